"""The layers across a train move: which version each layer installs in this run (pure).

When kubernetes.version moves to the next train, Istio (in-place Helm upgrades) and
Knative Serving must pass through every intermediate minor and cert-manager recommends
it (components/versions.py LAYER_PATHS). One step per layer per `pulumi up` keeps each
Helm release at one version per run, so a train move may take several runs; the run
says how many are left. The Kubernetes node upgrade runs in a run only when no layer
still has a step that must come before it and every layer already supports the target
minor: the layers wait for the node upgrade within a run, so a step in that run runs
on the new minor (Calico, which the nodes wait for, runs before it).

`current` holds what the cluster runs now: "Kubernetes" and each layer of
versions.LAYERS ('' or missing: not installed, so it takes the train's version).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Optional

from components import versions
from components.versions import AFTER, BEFORE, LayerStep, release_key

KUBERNETES = "Kubernetes"
NET_ISTIO = "Knative net-istio"
MAX_RUNS = 20  # far above any path; guards the count of runs left


@dataclass(frozen=True)
class LayerMove:
    layer: str
    current: str
    version: str

    def text(self) -> str:
        return f"{self.layer} {self.current} -> {self.version}"


@dataclass(frozen=True)
class LayerPlan:
    kubernetes_current: str  # '' when there is no cluster yet
    kubernetes_target: str  # the stack's kubernetes.version
    kubernetes: str  # the version the nodes run at the end of this run
    versions: dict[str, str]  # layer -> the version installed in this run (also NET_ISTIO)
    moves: tuple[LayerMove, ...]  # the layer steps of this run
    later: tuple[tuple[LayerMove, ...], ...] = ()  # the steps of each run after this one
    problems: tuple[str, ...] = ()
    held: tuple[str, ...] = ()  # why the Kubernetes upgrade waits (when it does)

    @property
    def kubernetes_moves(self) -> bool:
        return self.kubernetes == self.kubernetes_target

    @property
    def runs_left(self) -> int:
        return len(self.later)

    def train(self) -> versions.Train:
        """The target train with this run's layer versions (what the components install)."""
        base = versions.train_for(self.kubernetes_target)
        return dataclasses.replace(
            base, calico_version=self.versions["Calico"],
            cert_manager_version=self.versions["cert-manager"],
            istio_version=self.versions["Istio"],
            knative_serving_version=self.versions["Knative Serving"],
            knative_net_istio_version=self.versions[NET_ISTIO],
            kserve_version=self.versions["KServe"])

    def recorded(self) -> dict[str, str]:
        """What the cluster runs once this run has finished: the next run's `current`."""
        return {KUBERNETES: self.kubernetes, **self.versions}

    def warning(self) -> Optional[str]:
        """The run's message when more runs are needed."""
        if not self.later:
            return None
        steps = [m.text() for run in self.later for m in run]
        kube = (f" Kubernetes stays at {self.kubernetes} in this run and moves to "
                f"{self.kubernetes_target} in a later one ({'; '.join(self.held)})."
                if not self.kubernetes_moves else "")
        return (f"run `pulumi up` again: {len(steps)} more step(s) in "
                f"{len(self.later)} more run(s) ({', '.join(steps)}).{kube} Upstream has them "
                "pass through each intermediate release (docs/upgrades.md#layers-across-trains).")


def _minor(version: str) -> tuple[int, int]:
    return release_key(version)[:2]


def _minor_text(version: str) -> str:
    return ".".join(map(str, _minor(version)))


def net_istio_for(serving: str) -> str:
    """The net-istio release that goes with a Knative Serving release."""
    for steps in versions.LAYER_PATHS.values():
        for step in steps:
            if step.layer == "Knative Serving" and step.version == serving:
                return step.net_istio
    for train in versions.TRAINS.values():
        if train.knative_serving_version == serving:
            return train.knative_net_istio_version
    return ""


def _pairs(istio: str, serving: str) -> bool:
    """net-istio of this Knative minor is built and tested against this Istio minor."""
    if not istio or not serving:
        return True
    return versions.NET_ISTIO_TESTED_ISTIO.get(_minor_text(serving)) == _minor_text(istio)


def _supports(layer: str, version: str, kubernetes_minor: str) -> bool:
    support = versions.support_of(layer, version)
    return support is None or support.supports(kubernetes_minor)


def _remaining(layer: str, current: str, target: str, path: tuple[LayerStep, ...]) -> list[LayerStep]:
    """The steps left from `current` to the train's `target` version."""
    steps = [s for s in path if s.layer == layer and release_key(s.version) > release_key(current)
             and release_key(s.version) <= release_key(target)]
    if release_key(current) < release_key(target) and (
            not steps or steps[-1].version != target):
        steps.append(LayerStep(layer, target, versions.EITHER, ""))
    return steps


def _one_run(current: Mapping[str, str], target: str) -> LayerPlan:
    train = versions.train_for(target)
    wanted = versions.train_layer_versions(train)
    kube_now = current.get(KUBERNETES, "")
    have = {layer: current.get(layer, "") for layer in versions.LAYERS}
    net_istio_now = current.get(NET_ISTIO, "") or net_istio_for(have["Knative Serving"])

    def fresh_net_istio(serving: str) -> str:
        return (train.knative_net_istio_version if serving == train.knative_serving_version
                else net_istio_for(serving))

    if not kube_now:  # no cluster yet: it is built at the train
        return LayerPlan("", target, target, {**wanted, NET_ISTIO: train.knative_net_istio_version},
                         ())
    gap = _minor(target)[1] - _minor(kube_now)[1] if _minor(target)[0] == _minor(kube_now)[0] else 9
    result = {layer: have[layer] or wanted[layer] for layer in versions.LAYERS}
    if gap not in (0, 1):
        # A skipped minor or a downgrade: the preflight gate refuses it with its own message;
        # the layers stay as they are.
        return LayerPlan(kube_now, target, target,
                         {**result, NET_ISTIO: net_istio_now or fresh_net_istio(result["Knative Serving"])},
                         ())
    path = versions.LAYER_PATHS.get(train.kubernetes_minor, ())
    problems: list[str] = []
    remaining: dict[str, list[LayerStep]] = {}
    for layer in versions.LAYERS:
        now = have[layer]
        if not now:
            continue
        if release_key(now) > release_key(wanted[layer]):
            problems.append(
                f"{layer} runs {now}, newer than the {train.kubernetes_minor} train's "
                f"{wanted[layer]}: the program does not downgrade a layer. Fix: set "
                "kubernetes.version to the train the cluster's layers belong to.")
            continue
        steps = _remaining(layer, now, wanted[layer], path)
        if steps and layer in ("Istio", "Knative Serving") and \
                _minor(steps[0].version)[1] > _minor(now)[1] + 1:
            problems.append(
                f"{layer} runs {now}, and the way to the {train.kubernetes_minor} train starts at "
                f"{steps[0].version}: that skips a minor, which upstream does not support. Fix: "
                f"set kubernetes.version back to {kube_now} and upgrade {layer} one minor at a "
                "time by hand (docs/upgrades.md#layers-across-trains), then raise it again.")
            continue
        remaining[layer] = steps
    target_minor = train.kubernetes_minor
    held: list[str] = []
    if gap == 1:
        for layer, steps in remaining.items():
            before = [s.version for s in steps if s.when == BEFORE]
            if before:
                held.append(f"{layer} must reach {before[-1]} first")
            elif not _supports(layer, have[layer], target_minor):
                held.append(f"{layer} {have[layer]} does not support Kubernetes {target_minor}")
    kube_moves = gap == 0 or not held
    candidates: dict[str, LayerStep] = {}
    for layer, steps in remaining.items():
        if not steps:
            continue
        step = steps[0]
        if gap == 1 and not kube_moves and step.when == AFTER:
            continue  # needs the new minor: a later run
        if gap == 1 and kube_moves and step.when == BEFORE:
            continue  # cannot happen with `held` empty; kept for clarity
        if layer == "Calico" and gap == 1 and kube_moves and step.when == AFTER:
            continue  # Calico runs before the nodes move
        candidates[layer] = step
    # Istio and Knative move together so that net-istio stays with the Istio it was built
    # for: of the ways to move them in this run (both, one, neither), the first that
    # leaves them paired; none pairs (a cluster already unpaired): both move on.
    istio, knative = candidates.get("Istio"), candidates.get("Knative Serving")
    if have["Istio"] and have["Knative Serving"] and (istio or knative):
        for take_istio, take_knative in ((True, True), (False, True), (True, False)):
            after_istio = istio.version if istio and take_istio else result["Istio"]
            after_serving = knative.version if knative and take_knative else result["Knative Serving"]
            if _pairs(after_istio, after_serving):
                if not take_istio:
                    candidates.pop("Istio", None)
                if not take_knative:
                    candidates.pop("Knative Serving", None)
                break
        else:
            if not _pairs(result["Istio"], result["Knative Serving"]):
                pass  # unpaired already: moving on is the way back to a pair
            else:
                candidates.pop("Istio", None)
                candidates.pop("Knative Serving", None)
    if not kube_moves and not candidates and not problems:
        problems.append(
            f"no layer can take a step and Kubernetes cannot move to {target}: "
            f"{'; '.join(held)}. Fix: set kubernetes.version back to {kube_now} "
            "(docs/upgrades.md#layers-across-trains).")
    moves = []
    for layer, step in candidates.items():
        moves.append(LayerMove(layer, have[layer], step.version))
        result[layer] = step.version
    serving = result["Knative Serving"]
    net = (candidates["Knative Serving"].net_istio or fresh_net_istio(serving)
           if "Knative Serving" in candidates else net_istio_now or fresh_net_istio(serving))
    order = {layer: i for i, layer in enumerate(versions.LAYERS)}
    moves.sort(key=lambda m: order[m.layer])
    return LayerPlan(kube_now, target, target if kube_moves else kube_now,
                     {**result, NET_ISTIO: net}, tuple(moves), (), tuple(problems),
                     tuple(held) if not kube_moves else ())


def plan_layers(current: Mapping[str, str], target: str) -> LayerPlan:
    """This run's layer versions and whether the nodes move, with the runs still left after
    it (as the later runs would plan them). `target`: the stack's kubernetes.version."""
    plan = _one_run(current, target.lstrip("v"))
    if plan.problems:
        return plan
    later: list[tuple[LayerMove, ...]] = []
    state = plan
    for _ in range(MAX_RUNS):
        run = _one_run(state.recorded(), plan.kubernetes_target)
        if run.problems or (not run.moves and run.kubernetes == state.kubernetes):
            break
        kube = ((LayerMove(KUBERNETES, state.kubernetes, run.kubernetes),)
                if run.kubernetes != state.kubernetes else ())
        later.append(kube + run.moves)
        state = run
    return dataclasses.replace(plan, later=tuple(later))
