"""One load test: the load, the replica sampler, a progress line, the figures."""
from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Optional, TextIO

from components.loadtest import client
from components.loadtest.figures import figures, percentile
from components.loadtest.replicas import ReplicaSource, Sampler

BAR_WIDTH = 24


def default_out_dir(name: str, when: time.struct_time) -> Path:
    """Where the figures go without --out: loadtest-NAME-TIME in the current directory
    (.gitignore ignores loadtest-*/, so a run from the repository leaves it clean)."""
    return Path(f"loadtest-{name}-{time.strftime('%Y%m%d-%H%M%S', when)}")


def distinct_failures(failures: list[str]) -> list[dict]:
    """Each failure message once, whole, with how often it came, in order of first
    appearance (a source that cannot be reached fails the same way every time)."""
    return [{"error": error, "count": count} for error, count in Counter(failures).items()]


def progress_line(progress: client.Progress, elapsed: float, duration: float,
                  replicas: Optional[str]) -> str:
    """One line: a bar, time, counts, current rate and p95, the replicas."""
    done = min(1.0, elapsed / duration) if duration > 0 else 1.0
    filled = int(done * BAR_WIDTH)
    recent = sorted(progress.recent[-500:])
    p95 = percentile(recent, 95)
    rate = progress.completed / elapsed if elapsed > 0 else 0.0
    return (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {elapsed:5.1f}/{duration:g}s "
            f"sent {progress.sent} done {progress.completed} err {progress.errors} "
            f"{rate:7.1f}/s p95 {'-' if p95 is None else f'{p95 * 1000:.1f}ms'}"
            + (f" replicas {replicas}" if replicas else ""))


async def _show_progress(progress: client.Progress, duration: float, sampler: Optional[Sampler],
                         stream: TextIO, every: float) -> None:
    started = time.monotonic()
    width = 0
    while True:
        latest = sampler.latest if sampler else None
        shown = None if latest is None else f"{latest.ready if latest.ready is not None else '?'}" \
            f"/{latest.desired if latest.desired is not None else '?'}"
        line = progress_line(progress, time.monotonic() - started, duration, shown)
        stream.write("\r" + line.ljust(width))
        stream.flush()
        width = len(line)
        await asyncio.sleep(every)


async def _run(target: client.Target, duration: float, rate: Optional[float],
               concurrency: Optional[int], timeout: float, max_connections: int,
               progress: client.Progress, sampler: Optional[Sampler], stream: Optional[TextIO],
               every: float) -> list[client.Outcome]:
    shower = asyncio.ensure_future(_show_progress(progress, duration, sampler, stream, every)) \
        if stream is not None else None
    try:
        if rate is not None:
            return await client.open_loop(target, rate, duration, timeout=timeout,
                                          max_connections=max_connections, progress=progress)
        assert concurrency is not None
        return await client.closed_loop(target, concurrency, duration, timeout=timeout,
                                        progress=progress)
    finally:
        if shower is not None:
            shower.cancel()
            # The last state, not the one of a fraction of a second before the end.
            stream.write("\r" + progress_line(progress, duration, duration, None))


def run_load_test(target: client.Target, duration: float, *, rate: Optional[float] = None,
                  concurrency: Optional[int] = None, source: Optional[ReplicaSource] = None,
                  replica_interval: float = 2.0, timeout: float = client.DEFAULT_TIMEOUT,
                  max_connections: int = client.DEFAULT_MAX_CONNECTIONS,
                  progress_stream: Optional[TextIO] = sys.stderr, progress_every: float = 0.25,
                  about: Optional[dict] = None) -> dict:
    """Run the load (open loop with `rate`, closed loop with `concurrency`) and
    return its figures; the replicas are sampled from `source` meanwhile."""
    if (rate is None) == (concurrency is None):
        raise ValueError("give exactly one of rate and concurrency")
    progress = client.Progress()
    sampler = Sampler(source, replica_interval) if source is not None else None
    started = time.monotonic()
    if sampler is not None:
        sampler.start(started)
    try:
        # A loop of its own, not asyncio.run: that would leave the calling thread without
        # a current event loop, which a caller (Pulumi's mocks, in the tests) may rely on.
        loop = asyncio.new_event_loop()
        try:
            outcomes = loop.run_until_complete(
                _run(target, duration, rate, concurrency, timeout, max_connections, progress,
                     sampler, progress_stream, progress_every))
        finally:
            loop.close()
    finally:
        elapsed = time.monotonic() - started
        samples = sampler.stop() if sampler is not None else []
        if progress_stream is not None:
            progress_stream.write("\n")
            progress_stream.flush()
    result = figures(outcomes, elapsed=elapsed, duration=duration, asked_rate=rate,
                     concurrency=concurrency, replicas=samples, about=about or {})
    if sampler is not None:
        result["replica_source_failures"] = distinct_failures(sampler.failures)
    return result


def write_json(result: dict, path: Path) -> Path:
    import json
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
