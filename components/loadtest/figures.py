"""The figures of a load test (pure): percentiles, rates, the per-second series."""
from __future__ import annotations

import math
from collections import Counter
from typing import Optional, Sequence

from components.loadtest.client import Outcome
from components.loadtest.replicas import ReplicaSample

PERCENTILES = (50, 90, 95, 99)


def percentile(sorted_values: Sequence[float], p: float) -> Optional[float]:
    """Nearest-rank percentile of values sorted ascending (None when empty): the
    smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _ms(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value * 1000, 3)


def latency_summary(latencies: Sequence[float]) -> dict:
    ordered = sorted(latencies)
    summary = {f"p{p}": _ms(percentile(ordered, p)) for p in PERCENTILES}
    summary["max"] = _ms(ordered[-1]) if ordered else None
    summary["mean"] = _ms(sum(ordered) / len(ordered)) if ordered else None
    return summary


def per_second(outcomes: Sequence[Outcome], duration: float) -> dict:
    """Series by the second each request was sent (was due): requests/s, errors/s and
    the latency percentiles (ms) of its answers. By send time, so that the answers
    still coming in after the last second do not make a false dip at the end."""
    seconds = max(1, math.ceil(duration))
    buckets: list[list[Outcome]] = [[] for _ in range(seconds)]
    for outcome in outcomes:
        buckets[min(seconds - 1, max(0, int(outcome.due)))].append(outcome)
    series: dict[str, list] = {"t": [], "rate": [], "errors": []}
    for p in PERCENTILES:
        series[f"p{p}"] = []
    for second, bucket in enumerate(buckets):
        ok = sorted(o.latency for o in bucket if o.ok)
        series["t"].append(second + 0.5)
        series["rate"].append(len(bucket))
        series["errors"].append(sum(1 for o in bucket if not o.ok))
        for p in PERCENTILES:
            series[f"p{p}"].append(_ms(percentile(ok, p)))
    return series


def token_figures(outcomes: Sequence[Outcome], elapsed: float) -> Optional[dict]:
    """Streamed OpenAI answers (None when there were none): the time to the first
    token (from when each request was due, as the latency), the tokens, the rate
    of tokens over the whole test, and each answer's own rate after its first token.
    Tokens are the server's usage counts where it gave them (vLLM), else the chunks
    that carried text (the Hugging Face backend sends no usage in a stream)."""
    streamed = [o for o in outcomes if o.ok and o.ttft is not None]
    if not streamed:
        return None
    tokens = sum(o.tokens for o in streamed)
    after_first = sorted((o.tokens - 1) / (o.latency - o.ttft) for o in streamed
                         if o.tokens > 1 and o.latency > o.ttft)
    by_usage = sum(1 for o in streamed if o.tokens_from_usage)
    return {
        "answers": len(streamed),
        "ttft_ms": latency_summary([o.ttft for o in streamed]),
        "tokens": tokens,
        "tokens_per_s": round(tokens / elapsed, 3) if elapsed > 0 else None,
        "tokens_per_answer_mean": round(tokens / len(streamed), 3),
        "answer_tokens_per_s": {f"p{p}": None if percentile(after_first, p) is None else
                                round(percentile(after_first, p), 3) for p in (50, 10)},
        "counted_by": ("usage" if by_usage == len(streamed) else
                       "chunks" if by_usage == 0 else "usage and chunks"),
    }


def figures(outcomes: Sequence[Outcome], *, elapsed: float, duration: float,
            asked_rate: Optional[float], concurrency: Optional[int],
            replicas: Sequence[ReplicaSample], about: dict) -> dict:
    """Everything the JSON and the plot show."""
    ok = [o for o in outcomes if o.ok]
    statuses = Counter(str(o.status) for o in outcomes if o.status)
    errors = Counter(o.error for o in outcomes if o.error)
    http_errors = sum(1 for o in outcomes if o.status and not o.ok)
    return {
        **about,
        "asked_rate": asked_rate,
        "concurrency": concurrency,
        "duration_s": duration,
        "elapsed_s": round(elapsed, 3),
        "requests": len(outcomes),
        "ok": len(ok),
        "errors": len(outcomes) - len(ok),
        "http_errors": http_errors,
        "transport_errors": dict(sorted(errors.items())),
        "status_counts": dict(sorted(statuses.items())),
        "achieved_rate": round(len(outcomes) / elapsed, 3) if elapsed > 0 else None,
        "latency_ms": latency_summary([o.latency for o in ok]),
        "series": per_second(outcomes, duration),
        "replicas": [s.to_dict() for s in replicas],
        "openai": token_figures(outcomes, elapsed),
    }


def summary_lines(result: dict) -> list[str]:
    """What the command prints at the end."""
    lat = result["latency_ms"]
    asked = (f"asked {result['asked_rate']:g}/s" if result.get("asked_rate") is not None
             else f"concurrency {result['concurrency']}")
    lines = [
        f"{result['requests']} requests in {result['elapsed_s']:.1f}s ({asked}): achieved "
        f"{result['achieved_rate']:.1f}/s, {result['ok']} ok, {result['errors']} errors",
    ]
    if lat["p50"] is not None:
        lines.append("latency ms: " + "  ".join(f"p{p} {lat[f'p{p}']:.1f}" for p in PERCENTILES)
                     + f"  max {lat['max']:.1f}")
    tokens = result.get("openai")
    if tokens:
        ttft, rate = tokens["ttft_ms"], tokens["answer_tokens_per_s"]
        lines.append("time to first token ms: " + "  ".join(
            f"p{p} {ttft[f'p{p}']:.1f}" for p in PERCENTILES) + f"  max {ttft['max']:.1f}")
        lines.append(f"tokens: {tokens['tokens']} in {tokens['answers']} answers "
                     f"({tokens['tokens_per_s']:.1f} tokens/s overall, "
                     f"{tokens['tokens_per_answer_mean']:.1f} per answer"
                     + (f"; per answer after its first token p50 {rate['p50']:.1f}/s, "
                        f"p10 {rate['p10']:.1f}/s" if rate["p50"] is not None else "")
                     + f"; counted by {tokens['counted_by']})")
    if result["status_counts"]:
        lines.append("HTTP status: " + ", ".join(f"{k} x{v}" for k, v in
                                                 result["status_counts"].items()))
    if result["transport_errors"]:
        lines.append("no answer: " + ", ".join(f"{k} x{v}" for k, v in
                                               result["transport_errors"].items()))
    samples = [s for s in result["replicas"] if s["desired"] is not None or s["ready"] is not None]
    if samples:
        readies = [s["ready"] for s in samples if s["ready"] is not None]
        lines.append(f"replicas (ready): {readies[0] if readies else '?'} at start, "
                     f"max {max(readies) if readies else '?'}, {readies[-1] if readies else '?'} "
                     f"at the end ({len(samples)} samples)")
    return lines


def replica_failure_lines(result: dict) -> list[str]:
    """Why the replicas could not be read, each distinct reason once and whole."""
    source = result.get("replica_source") or "the replica source"
    lines = []
    for failure in result.get("replica_source_failures", []):
        times = "once" if failure["count"] == 1 else f"{failure['count']} times"
        error = failure["error"].replace("\n", "\n  ")
        lines.append(f"the replicas could not be read from {source} ({times}): {error}")
    return lines


def refused_status(result: dict) -> Optional[int]:
    """401 or 403 when the gateway refused requests (401 first: the token itself is bad)."""
    return next((status for status in (401, 403) if str(status) in result["status_counts"]), None)
