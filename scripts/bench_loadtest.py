#!/usr/bin/env python3
"""Benchmark the load test's client: does it hold the asked rate?

Starts a V1 server on loopback in its own process (components/loadtest/local_server.py,
asyncio, keep-alive), then runs the load test's open loop at each asked rate
and prints the achieved rate, how far it is from the asked one, the errors,
the latency percentiles and the client's CPU time. The goal on a 2-core
machine: at least 500 requests/s within 5% of the asked rate. A closed-loop
run (--concurrency) shows the most the client and this server do together.
The replica sampler runs meanwhile on a stand-in source (no cluster): "samples"
is how many it took of those due, "first ms" when it took the first; a busy
client that starves its thread shows here (the tests check its schedule on a
fake clock, not its speed).

Usage: scripts/bench_loadtest.py [--rates 500,1000,2000] [--duration 10] [--concurrency 32]
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from components import project_venv  # noqa: E402

if __name__ == "__main__":  # a command, not an import (tests import it)
    project_venv.ensure()

from components.loadtest.client import Target  # noqa: E402
from components.loadtest.local_server import listening_socket, run_forever  # noqa: E402
from components.loadtest.replicas import ReplicaSample  # noqa: E402
from components.loadtest.run import run_load_test  # noqa: E402
from components.serving.v1_protocol import SMOKE_IMAGE_JPEG, predict_path, request_body  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="500,1000,2000", help="asked rates, req/s")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--concurrency", type=int, default=32, help="closed-loop workers (0: skip)")
    parser.add_argument("--server-delay", type=float, default=0.0,
                        help="seconds the server waits before each answer")
    parser.add_argument("--replica-interval", type=float, default=0.25,
                        help="seconds between replica samples (default 0.25)")
    args = parser.parse_args(argv)
    sock = listening_socket()
    port = sock.getsockname()[1]
    server = multiprocessing.get_context("fork").Process(
        target=run_forever, args=(sock, args.server_delay), daemon=True)
    server.start()
    target = Target(f"http://127.0.0.1:{port}", "bench.kserve-test.example.com",
                    predict_path("bench"), request_body(SMOKE_IMAGE_JPEG).encode())
    print(f"V1 server on 127.0.0.1:{port} (pid {server.pid}), body {len(target.body)} bytes, "
          f"{args.duration:g}s per run, {multiprocessing.cpu_count()} CPUs")
    print(f"{'asked/s':>8} {'achieved/s':>11} {'off':>7} {'errors':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'client CPU':>10} {'samples':>8} {'first ms':>8}  within 5%")
    runs = [("rate", float(r)) for r in args.rates.split(",") if r]
    if args.concurrency:
        runs.append(("concurrency", args.concurrency))
    worst = 0.0
    try:
        for kind, value in runs:
            before = cpu_seconds()
            result = run_load_test(target, args.duration, progress_stream=None,
                                   source=lambda: ReplicaSample(0.0, desired=1, ready=1),
                                   replica_interval=args.replica_interval,
                                   **({"rate": value} if kind == "rate"
                                      else {"concurrency": int(value)}))
            samples = result["replicas"]
            # At the start, every tick during the run, at the end.
            due = math.floor(result["elapsed_s"] / args.replica_interval) + 2
            first_ms = samples[0]["t"] * 1000 if samples else float("nan")
            used = cpu_seconds() - before
            lat = result["latency_ms"]
            achieved = result["achieved_rate"]
            if kind == "rate":
                off = (achieved - value) / value
                ok = abs(off) <= 0.05 and result["errors"] == 0
                worst = max(worst, abs(off)) if ok else worst
                label, shown_off, verdict = f"{value:g}", f"{off:+.1%}", "yes" if ok else "NO"
            else:
                label, shown_off, verdict = f"C={int(value)}", "-", "(closed loop)"
            print(f"{label:>8} {achieved:>11.1f} {shown_off:>7} {result['errors']:>7} "
                  f"{lat['p50'] or 0:>7.2f} {lat['p99'] or 0:>7.2f} "
                  f"{used / result['elapsed_s']:>9.0%} {f'{len(samples)}/{due}':>8} "
                  f"{first_ms:>8.1f}  {verdict}")
    finally:
        server.terminate()
        server.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
