"""The load test's picture: latency percentiles, achieved rate and replicas over time.

matplotlib with the Agg backend (a file, no display): a well-kept library that
draws a readable PNG in a few lines, where hand-written PNG drawing would not be.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from components.loadtest.figures import PERCENTILES  # noqa: E402


def _points(xs: list, ys: list) -> tuple[list, list]:
    kept = [(x, y) for x, y in zip(xs, ys) if y is not None]
    return [x for x, _ in kept], [y for _, y in kept]


def draw(result: dict, path: Path) -> Path:
    series, samples = result["series"], result["replicas"]
    figure, (latency, rate, replicas) = plt.subplots(3, 1, sharex=True, figsize=(10, 9),
                                                     constrained_layout=True)
    asked = (f"asked {result['asked_rate']:g} req/s" if result.get("asked_rate") is not None
             else f"concurrency {result['concurrency']}")
    figure.suptitle(f"Load test of {result.get('model', '?')}: {asked}, "
                    f"{result['duration_s']:g} s")
    for p in PERCENTILES:
        xs, ys = _points(series["t"], series[f"p{p}"])
        latency.plot(xs, ys, label=f"p{p}")
    latency.set_ylabel("latency (ms)")
    latency.legend(loc="upper left", ncols=len(PERCENTILES))
    latency.grid(alpha=0.3)

    rate.plot(series["t"], series["rate"], label="sent/s (answered)", color="tab:blue")
    if any(series["errors"]):
        rate.plot(series["t"], series["errors"], label="errors/s", color="tab:red")
    if result.get("asked_rate") is not None:
        rate.axhline(result["asked_rate"], linestyle="--", color="grey", label="asked")
    rate.set_ylabel("requests/s")
    rate.set_ylim(bottom=0)
    rate.legend(loc="lower right")
    rate.grid(alpha=0.3)

    ts = [s["t"] for s in samples]
    for key, label in (("desired", "desired"), ("ready", "ready")):
        xs, ys = _points(ts, [s[key] for s in samples])
        if xs:
            replicas.step(xs, ys, where="post", label=f"{label} replicas")
    replicas.set_ylabel("replicas")
    replicas.set_xlabel("seconds since start")
    replicas.grid(alpha=0.3)
    if not samples:
        replicas.text(0.5, 0.5, "no replica source", transform=replicas.transAxes, ha="center")
    xs, shares = _points(ts, [s["canary_share"] for s in samples])
    if xs:
        share = replicas.twinx()
        share.step(xs, [100 * s for s in shares], where="post", color="tab:purple",
                   linestyle=":", label="canary share")
        share.set_ylabel("canary share (%)")
        share.set_ylim(0, 100)
        share.legend(loc="upper right")
    if replicas.get_legend_handles_labels()[0]:
        replicas.legend(loc="upper left")
    replicas.set_ylim(bottom=0)
    replicas.yaxis.set_major_locator(MaxNLocator(integer=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
