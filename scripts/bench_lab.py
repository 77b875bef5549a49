#!/usr/bin/env python3
"""Benchmark the bring-up in the SSH lab: how much of `pulumi up` runs in parallel.

Runs the real program against 1, 3, 10 and 20 emulated nodes (tests/lab, needs
root) with each slow step made slow by the stand-ins, at 1/SCALE of what it
takes on a real VM, and prints for each size: the wall time of the run, the
number of serial steps on the critical path, the critical path's time, and the
total of all step times (what a one-node-at-a-time run would take).

Usage: sudo scripts/bench_lab.py [--scale 100] [--sizes 1,3,10,20]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts", ROOT / "tests"):
    sys.path.insert(0, str(path))
from components import project_venv  # noqa: E402

project_venv.ensure()

from lab.nodes import Lab, unavailable_reason  # noqa: E402
from lab.runner import COMMAND, LabRunner, SshExecutor, lab_runner  # noqa: E402

# Seconds each step takes on a real Ubuntu 22.04 VM with a decent network. These
# are ESTIMATES (from typical kubeadm install transcripts), not measurements: the
# lab replays them scaled down. Keys are the stand-in steps that get the delay.
REAL_SECONDS = {
    "apt-get-update": 20,        # twice per node in prepare
    "apt-get-install": 75,       # twice per node: prerequisites, then containerd + kube packages
    "systemctl-restart": 5,      # containerd restart with the new config
    "kubeadm-images-pull": 60,   # control plane only: pulls the control-plane images
    "kubeadm-init": 90,          # control plane bootstrap, waits for a healthy API server
    "kubeadm-token-create": 2,
    "kubeadm-join": 40,          # TLS bootstrap, kubelet start
    "kubectl-get": 5,            # the Node object appears
    "kubectl-wait": 10,          # each node Ready once Calico runs (the Helm release itself is mocked)
}


def critical_path(runner: LabRunner) -> tuple[int, float]:
    """(steps, seconds) of the longest chain of executed commands through the dependencies."""
    seconds = {}
    for run in runner.last_run:
        seconds[run.resource] = seconds.get(run.resource, 0.0) + run.seconds
    memo: dict = {}

    def longest(key) -> tuple[int, float]:
        if key in memo:
            return memo[key]
        resource = runner.state.get(key)
        best = (0, 0.0)
        for dependency in (resource.dependencies if resource else ()):
            candidate = longest(dependency)
            if (candidate[1], candidate[0]) > (best[1], best[0]):
                best = candidate
        if resource is not None and resource.type == COMMAND and key[1] in seconds:
            best = (best[0] + 1, best[1] + seconds[key[1]])
        memo[key] = best
        return best

    return max((longest(k) for k in runner.state), key=lambda r: (r[1], r[0]), default=(0, 0.0))


def bench(size: int, scale: float) -> dict:
    with Lab() as lab:
        started = time.monotonic()
        names = ["cp1"] + [f"worker{i}" for i in range(1, size)]
        nodes = lab.start(names)
        start_seconds = time.monotonic() - started
        for node in nodes:
            for step, real in REAL_SECONDS.items():
                node.fault(step, delay=real / scale)
        runner = lab_runner(lab, executor=SshExecutor(dial_backoff=0.1, max_backoff=0.5))
        began = time.monotonic()
        runner.up(lab.stack_config(), lab.key.private_openssh)
        wall = time.monotonic() - began
        steps, path_seconds = critical_path(runner)
        assert sorted(lab.cluster()["nodes"]) == sorted(names)  # the cluster really formed
        return {"nodes": size, "start": start_seconds, "wall": wall, "steps": steps,
                "path": path_seconds, "total": sum(r.seconds for r in runner.last_run),
                "commands": len(runner.last_run)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=100.0, help="real seconds per lab second")
    parser.add_argument("--sizes", default="1,3,10,20")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"cannot run the lab here: {reason}", file=sys.stderr)
        return 2
    print(f"step durations: real estimates / {args.scale:g}; lab node start-up not included in wall")
    print(f"{'nodes':>5} {'start s':>8} {'wall s':>7} {'commands':>8} {'critical steps':>14} "
          f"{'critical s':>10} {'sum of steps s':>14} {'sum/wall':>8}")
    for size in (int(s) for s in args.sizes.split(",")):
        r = bench(size, args.scale)
        print(f"{r['nodes']:>5} {r['start']:>8.2f} {r['wall']:>7.2f} {r['commands']:>8} {r['steps']:>14} "
              f"{r['path']:>10.2f} {r['total']:>14.2f} {r['total'] / r['wall']:>8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
