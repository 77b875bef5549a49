"""Where the load test reads a model's replicas over time (pluggable).

A source is any callable returning a `ReplicaSample` (or None when it cannot
tell this time); `Sampler` calls it every few seconds on a thread while the
load runs. Two real sources:
- `KubectlSource`: the model's Deployments (label serving.kserve.io/inferenceservice),
  desired = spec.replicas and ready = status.readyReplicas summed, and the
  canary's share as configured (the InferenceService's predictor traffic: the
  latest revision's percent when traffic is split), with the stack's kubeconfig;
- `PrometheusSource`: the Models dashboard's own queries (desired, available,
  and the newest revision's observed share of requests).
Tests pass a fake.
"""
from __future__ import annotations

import json
import math
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Callable, Optional

KSERVE_POD_LABEL = "serving.kserve.io/inferenceservice"


@dataclass(frozen=True)
class ReplicaSample:
    t: float                               # seconds since the load started
    desired: Optional[int] = None
    ready: Optional[int] = None
    canary_share: Optional[float] = None   # 0..1, when the model has a canary

    def to_dict(self) -> dict:
        return {"t": round(self.t, 3), "desired": self.desired, "ready": self.ready,
                "canary_share": self.canary_share}


ReplicaSource = Callable[[], Optional[ReplicaSample]]  # t is filled in by the Sampler


class SourceError(Exception):
    pass


def deployments_replicas(document: dict) -> tuple[int, int]:
    """(desired, ready) summed over `kubectl get deployments -o json`."""
    desired = ready = 0
    for item in document.get("items", []):
        desired += int(item.get("spec", {}).get("replicas") or 0)
        ready += int(item.get("status", {}).get("readyReplicas") or 0)
    return desired, ready


def canary_share_from_isvc(document: dict) -> Optional[float]:
    """The latest revision's configured share when the predictor's traffic is split."""
    components = document.get("status", {}).get("components", {})
    traffic = components.get("predictor", {}).get("traffic") or []
    if len(traffic) < 2:
        return None
    latest = [t for t in traffic if t.get("latestRevision")]
    return float(latest[0].get("percent", 0)) / 100 if latest else None


class KubectlSource:
    def __init__(self, namespace: str, name: str, kubeconfig: Optional[str] = None,
                 kubectl: str = "kubectl", timeout: float = 10.0,
                 run: Callable[..., subprocess.CompletedProcess] = subprocess.run):
        self.namespace, self.name = namespace, name
        self.base = [kubectl] + (["--kubeconfig", kubeconfig] if kubeconfig else [])
        self.timeout, self.run = timeout, run
        self.description = f"kubectl ({kubeconfig or 'default kubeconfig'})"

    def _json(self, *args: str) -> dict:
        try:
            result = self.run([*self.base, "-n", self.namespace, *args, "-o", "json"],
                              capture_output=True, text=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SourceError(f"kubectl: {error}") from None
        if result.returncode != 0:
            # Whole: kubectl's first lines often say why (an unreachable API server).
            raise SourceError(f"kubectl: {result.stderr.strip() or f'exit {result.returncode}'}")
        try:
            return json.loads(result.stdout)
        except ValueError:
            raise SourceError(f"kubectl: the output of kubectl {' '.join(args)} is not JSON") \
                from None

    def __call__(self) -> Optional[ReplicaSample]:
        desired, ready = deployments_replicas(
            self._json("get", "deployments", "-l", f"{KSERVE_POD_LABEL}={self.name}"))
        try:
            share = canary_share_from_isvc(self._json("get", "inferenceservice", self.name))
        except SourceError:
            share = None
        return ReplicaSample(0.0, desired, ready, share)


class PrometheusSource:
    """Reads the Models dashboard's queries from Prometheus' HTTP API."""

    def __init__(self, url: str, desired: str, ready: str, share: Optional[str] = None,
                 timeout: float = 5.0):
        self.url = url.rstrip("/")
        self.queries = {"desired": desired, "ready": ready, "share": share}
        self.timeout = timeout
        self.description = f"Prometheus at {self.url}"

    def _query(self, expr: str) -> list[tuple[dict, float]]:
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as answer:
                body = json.loads(answer.read())
        except (OSError, ValueError) as error:
            raise SourceError(f"Prometheus: {error}") from None
        if body.get("status") != "success":
            raise SourceError(f"Prometheus: {body.get('error', body)}")
        try:
            return [(r.get("metric", {}), float(r["value"][1])) for r in body["data"]["result"]]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise SourceError(f"Prometheus: not an instant-query answer: {str(body)[:300]}") \
                from None

    def __call__(self) -> Optional[ReplicaSample]:
        def scalar(expr: Optional[str]) -> Optional[float]:
            found = self._query(expr) if expr else []
            return found[0][1] if found else None

        desired, ready = scalar(self.queries["desired"]), scalar(self.queries["ready"])
        share = None
        if self.queries["share"]:
            by_revision = {m.get("destination_service_name", ""): v
                           for m, v in self._query(self.queries["share"])}
            if len(by_revision) > 1:
                share = by_revision[max(by_revision)]  # revisions sort by their number
        return ReplicaSample(0.0, None if desired is None else int(round(desired)),
                             None if ready is None else int(round(ready)), share)


def next_due(start: float, interval: float, now: float) -> float:
    """The first tick start + k*interval after `now`: a slow source skips ticks
    instead of making the samples drift or bunch up."""
    return start + (math.floor((now - start) / interval) + 1) * interval


class Sampler:
    """Calls a source at start, every `interval` seconds on a thread, and once more
    at stop; failures are recorded, not fatal. `clock` and `wait` (sleep up to the
    given seconds, return True once stopped) are injectable: tests pass fakes and
    need no wall time."""

    def __init__(self, source: ReplicaSource, interval: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 wait: Optional[Callable[[float], bool]] = None):
        self.source, self.interval, self.clock = source, interval, clock
        self.samples: list[ReplicaSample] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self.wait = wait or self._stop.wait
        self._thread: Optional[threading.Thread] = None
        self._start = 0.0

    def _take(self) -> None:
        asked = self.clock() - self._start
        try:
            sample = self.source()
        except SourceError as error:
            self.failures.append(str(error))
            return
        except Exception as error:  # a source's bug must not end the sampling unseen
            self.failures.append(f"{type(error).__name__}: {error}")
            return
        if sample is not None:
            self.samples.append(ReplicaSample(asked, sample.desired, sample.ready,
                                              sample.canary_share))

    def _loop(self) -> None:
        # The first sample is taken even when stop() comes at once: the state at the start.
        while True:
            self._take()
            now = self.clock()
            if self.wait(max(0.0, next_due(self._start, self.interval, now) - now)):
                return

    def start(self, start: Optional[float] = None) -> None:
        self._start = self.clock() if start is None else start
        self._thread = threading.Thread(target=self._loop, name="replicas", daemon=True)
        self._thread.start()

    def stop(self) -> list[ReplicaSample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._take()  # one last look after the load
        return self.samples

    @property
    def latest(self) -> Optional[ReplicaSample]:
        return self.samples[-1] if self.samples else None
