#!/usr/bin/env python3
"""Benchmark an upload into a model store in the SSH lab: throughput and the
program's peak memory while it hashes and uploads one large file.

Starts a one-node lab (tests/lab, needs root), writes a file of --size-mb
(default 1024) of incompressible bytes, and runs the real program with a model
store that uploads it: the program hashes the file (SHA-256, streamed), the
lab copies it to the node over SSH with SFTP as CopyToRemote does (streamed,
in this process), and upload-to-claim.sh writes it into the claim through the
kubectl stand-in's pod. Then a second `up`, which must send nothing.

Prints: time to hash the file, SFTP throughput, the in-claim copy's
throughput, the wall time of both runs, and the peak RSS of this process (the
program, the Pulumi mock runtime and the SFTP client) against the 300 MB goal.

Usage: sudo scripts/bench_upload.py [--size-mb 1024]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts", ROOT / "tests"):
    sys.path.insert(0, str(path))

from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components.storage.files import sha256_file  # noqa: E402
from lab.nodes import Lab, unavailable_reason  # noqa: E402
from lab.runner import SshExecutor, lab_runner  # noqa: E402

GOAL_MB = 300
BLOCK = 1 << 20


def rss_mb() -> float:
    """This process's resident set now (from /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def write_file(path: Path, size_mb: int) -> None:
    """Incompressible bytes, one MB at a time (SSH would not compress them anyway)."""
    seed = os.urandom(BLOCK)
    with open(path, "wb") as handle:
        for i in range(size_mb):
            handle.write(i.to_bytes(8, "little") + seed[8:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the file (default 1024)")
    args = parser.parse_args(argv)
    reason = unavailable_reason()
    if reason:
        print(f"bench_upload.py: {reason}", file=sys.stderr)
        return 2
    baseline = rss_mb()
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp, Lab() as lab:
        model = Path(tmp) / "model.bin"
        started = time.monotonic()
        write_file(model, args.size_mb)
        size = model.stat().st_size
        print(f"file: {size / 1e6:.0f} MB written in {time.monotonic() - started:.1f}s")
        started = time.monotonic()
        sha256_file(model)
        hash_seconds = time.monotonic() - started

        lab.start(["cp1"])
        runner = lab_runner(lab, executor=SshExecutor(dial_backoff=0.1, max_backoff=0.5,
                                                      command_timeout=3600))
        config = lab.stack_config()
        config.update({
            "modelStores": [{"name": "models", "namespace": "kserve-test", "size": "20Gi",
                             "upload": [{"from": str(model), "to": "big/model.bin"}]}],
            "models": [{"name": "big", "namespace": "kserve-test", "format": "sklearn",
                        "storageUri": "pvc://models/big"}]})
        before_up = rss_mb()
        started = time.monotonic()
        runner.up(config, lab.key.private_openssh)
        first_seconds = time.monotonic() - started
        copy = next(r for r in runner.last_run if r.phase == "copy")
        sync = next(r for r in runner.last_run if r.resource.startswith("upload-"))
        record = lab.claim("kserve-test", "models")
        in_claim = lab.nodes["cp1"].path(record["path"]) / "big" / "model.bin"
        if in_claim.stat().st_size != size:
            print("bench_upload.py: the file in the claim has the wrong size", file=sys.stderr)
            return 1
        started = time.monotonic()
        runner.up(config, lab.key.private_openssh)
        second_seconds = time.monotonic() - started
        resent = sum(r.bytes_sent for r in runner.last_run)

    peak = peak_rss_mb()
    print(f"hash (SHA-256, streamed, page cache warm): {hash_seconds:.1f}s, "
          f"{size / hash_seconds / 1e6:.0f} MB/s")
    print(f"SFTP to the node (CopyToRemote's path): {copy.bytes_sent / 1e6:.0f} MB in "
          f"{copy.seconds:.1f}s = {copy.bytes_sent / copy.seconds / 1e6:.0f} MB/s")
    print(f"into the claim (upload-to-claim.sh: check, tar through the pod): {sync.seconds:.1f}s = "
          f"{size / sync.seconds / 1e6:.0f} MB/s")
    print(f"first up (cluster bring-up in the lab + upload): {first_seconds:.1f}s; "
          f"second up: {second_seconds:.1f}s, {resent} bytes sent, "
          f"{len(runner.last_run)} steps run")
    print(f"RSS: {baseline:.0f} MB after imports, {before_up:.0f} MB before up, "
          f"peak {peak:.0f} MB (goal < {GOAL_MB} MB: {'met' if peak < GOAL_MB else 'NOT met'})")
    return 0 if peak < GOAL_MB else 1


if __name__ == "__main__":
    sys.exit(main())
