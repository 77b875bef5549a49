#!/usr/bin/env python3
"""Benchmark scripts/preflight.py over N emulated nodes: is every node checked at once?

Starts N nodes of the SSH lab (tests/lab, needs root), runs the real
preflight.py against them, and prints the wall time for each size. With the
nodes checked in parallel the time stays nearly flat as N grows; checked one
after another it would grow with N.

Usage: sudo scripts/bench_preflight.py [--sizes 1,20] [--slow 1.0]
--slow makes each node answer that many seconds late (the curl stand-in waits),
standing in for a node whose probes of the package repositories time out.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    sys.path.insert(0, str(path))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

import yaml  # noqa: E402
from lab.nodes import Lab, unavailable_reason  # noqa: E402


def measure(size: int, slow: float) -> tuple[float, int]:
    with Lab() as lab, tempfile.TemporaryDirectory() as tmp:
        names = ["cp1"] + [f"worker{i}" for i in range(1, size)]
        nodes = lab.start(names)
        for node in nodes:
            if slow:
                node.fault("curl", delay=slow)
        config = lab.stack_config(pin_host_keys=True)
        stack = Path(tmp) / "Pulumi.bench.yaml"
        stack.write_text(yaml.safe_dump({"config": {f"kserve-cluster:{k}": v for k, v in config.items()}}))
        key = Path(tmp) / "id_lab"
        key.write_text(lab.key.private_openssh)
        key.chmod(0o600)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "preflight.py"), "--stack", "bench",
                                 "--stacks-dir", tmp, "--key-file", str(key), "--json"],
                                capture_output=True, text=True)
        wall = time.monotonic() - started
        checked = len(yaml.safe_load(result.stdout)["nodes"]) if result.stdout else 0
        return wall, checked


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,20")
    parser.add_argument("--slow", type=float, default=1.0,
                        help="seconds each node's repository probes take (default 1.0)")
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"bench_preflight.py: the SSH lab is unavailable here: {reason}", file=sys.stderr)
        return 2
    print(f"{'nodes':>5} {'checked':>7} {'wall s':>7}   (each node answers >= {args.slow:g}s late)")
    for size in (int(s) for s in args.sizes.split(",")):
        wall, checked = measure(size, args.slow)
        print(f"{size:>5} {checked:>7} {wall:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
