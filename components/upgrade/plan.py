"""The upgrade as ordered steps, from the versions observed on the nodes (pure).

kubeadm's order (kubernetes.io "Upgrading kubeadm clusters"): gates, an etcd
snapshot, then the first control plane (its package repository moved to the
target minor, `kubeadm upgrade plan`, `apply`, then its kubelet), the other
control planes one at a time (`kubeadm upgrade node`), then the workers in
batches of `upgrade.maxUnavailable`, each moving its own repository first. A node whose observed version is already
the target is left out: that is what makes a failed run resumable.

Patch upgrades go in one step; a minor upgrade goes one minor at a time. What
cannot be done (a skipped minor, a downgrade, a version with no train, a stack
node that is not in the cluster) is refused by `version_problems` before
anything changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from components import versions
from components.stack_config import CONTROL_PLANE

KEY = "kubernetes.version"

# Step actions, in the order they run on one node.
GATES = "gates"
SNAPSHOT = "snapshot"
REPOSITORY = "repository"
KUBEADM_PACKAGE = "kubeadm-package"
UPGRADE_PLAN = "upgrade-plan"
UPGRADE_APPLY = "upgrade-apply"
UPGRADE_NODE = "upgrade-node"
DRAIN = "drain"
KUBELET_PACKAGE = "kubelet-package"
RESTART = "restart"
READY = "ready"
UNCORDON = "uncordon"


@dataclass(frozen=True)
class ObservedNode:
    """A node's versions as the cluster reports them ('' when it is not in the cluster)."""
    name: str
    role: str
    kubelet: str
    control_plane: str = ""  # the kube-apiserver version on a control plane


@dataclass(frozen=True)
class Step:
    number: int
    node: str  # the node the step is about ('' for the cluster)
    action: str
    text: str
    batch: int = 0  # the worker batch (1-based); 0 outside the workers' phase


@dataclass(frozen=True)
class UpgradePlan:
    current: str  # the API server's version before the run
    target: str
    kind: str  # "none", "patch" or "minor"
    steps: tuple[Step, ...]
    finished: tuple[str, ...]  # nodes already at the target: skipped
    batches: tuple[tuple[str, ...], ...]  # the workers left, batch by batch

    def for_node(self, name: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.node == name)


class UpgradeRefused(ValueError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("the upgrade is refused; nothing was changed on any node:\n"
                         + "\n".join(f"  - {p}" for p in problems))


def semver(version: str) -> tuple[int, int, int]:
    major, minor, patch = version.lstrip("v").split(".")
    return int(major), int(minor), int(patch)


def minor(version: str) -> tuple[int, int]:
    return semver(version)[:2]


def _minor_text(version: str) -> str:
    return ".".join(map(str, minor(version)))


def cluster_version(observed: Iterable[ObservedNode]) -> str:
    """The API servers' version: the oldest control plane's (they are within a minor)."""
    found = [n.control_plane for n in observed if n.role == CONTROL_PLANE and n.control_plane]
    return min(found, key=semver) if found else ""


def _problem(value: str, what: str, fix: str) -> str:
    return f"kserve-cluster:{KEY} = {value!r}: {what} Fix: {fix}"


def version_problems(observed: list[ObservedNode], stack_nodes: list[str], target: str) -> list[str]:
    """Why the cluster cannot go to `target` in this run ([] when it can, or there
    is nothing to do). Judged before any node changes."""
    try:
        versions.train_for(target)
    except ValueError:
        return [_problem(target, "no release train for it.",
                         f"use one of the trains {', '.join(versions.TRAINS)}.")]
    current = cluster_version(observed)
    if not current:
        return []  # no cluster yet: it is built at the target
    joined = {n.name: n for n in observed if n.kubelet}
    kubelets = [n.kubelet for n in joined.values()]
    if all(semver(v) == semver(target) for v in kubelets + [current]):
        return []  # nothing to upgrade
    problems = []
    missing = [name for name in stack_nodes if name not in joined]
    if missing:
        problems.append(_problem(
            target, f"the stack's node(s) {', '.join(missing)} are not in the cluster, so their "
            "versions cannot be checked or upgraded with the others.",
            f"first run `pulumi up` with kubernetes.version {current} so that they join (or remove "
            "them from the stack), then raise the version."))
    newest_kubelet = max(kubelets, key=semver) if kubelets else current
    if semver(target) < semver(current) or semver(target) < semver(newest_kubelet):
        problems.append(_problem(
            target, f"a downgrade: the cluster runs {max(current, newest_kubelet, key=semver)}. "
            "kubeadm does not downgrade a cluster.",
            f"keep kubernetes.version at {max(current, newest_kubelet, key=semver)} or above; to go "
            "back, restore the etcd snapshot the upgrade took (docs/upgrades.md)."))
        return problems
    cur_major, cur_minor = minor(current)
    if minor(target) > (cur_major, cur_minor + 1):
        step = f"{cur_major}.{cur_minor + 1}"
        nxt = versions.TRAINS.get(step)
        problems.append(_problem(
            target, f"skips a minor: the cluster runs {current}, and kubeadm upgrades one minor "
            "at a time.",
            f"upgrade to {nxt.kubernetes_version if nxt else step + '.x'} first, then to {target}."))
    elif minor(target) > minor(current):
        behind = sorted(n.name for n in joined.values() if minor(n.kubelet) < minor(current))
        if behind:
            problems.append(_problem(
                target, f"the node(s) {', '.join(behind)} still run a kubelet older than the "
                f"control plane's {_minor_text(current)}: the last upgrade did not finish.",
                f"set kubernetes.version to {current} and run `pulumi up` to finish it, then "
                f"raise it to {target}."))
    return problems


def kind_of(current: str, target: str) -> str:
    if not current or semver(current) == semver(target):
        return "none"
    return "patch" if minor(current) == minor(target) else "minor"


def _node_steps(node: ObservedNode, target: str, first: bool) -> list[tuple[str, str]]:
    tag = f"v{target.lstrip('v')}"
    steps: list[tuple[str, str]] = []
    if node.role == CONTROL_PLANE and semver(node.control_plane or "0.0.0") != semver(target):
        steps.append((KUBEADM_PACKAGE, f"install kubeadm {target} (held)"))
        if first:
            steps += [(UPGRADE_PLAN, f"kubeadm upgrade plan {tag}"),
                      (UPGRADE_APPLY, f"kubeadm upgrade apply {tag}")]
        else:
            steps.append((UPGRADE_NODE, "kubeadm upgrade node"))
    if semver(node.kubelet) != semver(target):
        if node.role != CONTROL_PLANE:
            steps += [(KUBEADM_PACKAGE, f"install kubeadm {target} (held)"),
                      (UPGRADE_NODE, "kubeadm upgrade node")]
        steps += [(DRAIN, "drain (PodDisruptionBudgets respected)"),
                  (KUBELET_PACKAGE, f"install kubelet and kubectl {target} (held)"),
                  (RESTART, "restart the kubelet"),
                  (READY, "wait until the node is Ready"),
                  (UNCORDON, "uncordon")]
    return steps


def batches_of(workers: list[str], max_unavailable: int,
               finished: Iterable[str] = ()) -> tuple[tuple[str, ...], ...]:
    """The stack's workers, in order, in batches of `max_unavailable`; finished
    workers drop out of their batch (an empty batch drops out). The same batches
    whatever has finished, so a re-run keeps the order of the first."""
    done = set(finished)
    chunks = [workers[i:i + max_unavailable] for i in range(0, len(workers), max_unavailable)]
    return tuple(b for b in (tuple(w for w in chunk if w not in done) for chunk in chunks) if b)


def plan_upgrade(observed: list[ObservedNode], target: str, max_unavailable: int,
                 stack_nodes: Optional[list[str]] = None) -> UpgradePlan:
    """The ordered steps that bring every node to `target`; UpgradeRefused when
    `version_problems` finds any. `observed` is in the stack's node order."""
    names = stack_nodes if stack_nodes is not None else [n.name for n in observed]
    problems = version_problems(observed, names, target)
    if problems:
        raise UpgradeRefused(problems)
    target = target.lstrip("v")
    current = cluster_version(observed)
    by_name = {n.name: n for n in observed}
    nodes = [by_name[name] for name in names if name in by_name]
    if not current:
        return UpgradePlan("", target, "none", (), tuple(n.name for n in nodes), ())
    control_planes = [n for n in nodes if n.role == CONTROL_PLANE]
    workers = [n for n in nodes if n.role != CONTROL_PLANE]
    first = control_planes[0].name if control_planes else ""
    work = {n.name: _node_steps(n, target, n.name == first) for n in nodes}
    finished = tuple(n.name for n in nodes if not work[n.name])
    batches = batches_of([w.name for w in workers], max_unavailable, finished)
    if len(finished) == len(nodes):
        return UpgradePlan(current, target, "none", (), finished, ())
    rows: list[tuple[str, str, str, int]] = [
        ("", GATES, f"gates: every node Ready, /readyz, etcd healthy, version skew for {target}, "
                    f"no API version removed by {_minor_text(target)} in use", 0),
        (first, SNAPSHOT, "etcd snapshot (scripts/node/etcd-snapshot.sh)", 0)]
    repo = versions.kubernetes_apt_repo(_minor_text(target))

    def node_rows(node: ObservedNode, batch: int) -> list[tuple[str, str, str, int]]:
        # Each node moves its own repository first, in its own command (a node of
        # another minor than the target's, whatever the API server runs).
        moved = minor(node.kubelet) != minor(target) or (
            node.role == CONTROL_PLANE and minor(node.control_plane or node.kubelet) != minor(target))
        own = [(REPOSITORY, f"apt repository -> {repo} (its Release.key)")] if moved else []
        return [(node.name, action, text, batch) for action, text in own + work[node.name]]

    for node in control_planes:
        if work[node.name]:
            rows += node_rows(node, 0)
    for number, batch in enumerate(batches, start=1):
        for name in batch:
            rows += node_rows(by_name[name], number)
    steps = tuple(Step(i, node, action, text, batch)
                  for i, (node, action, text, batch) in enumerate(rows, start=1))
    return UpgradePlan(current, target, kind_of(current, target), steps, finished, batches)


def command_of(step: Step) -> str:
    """The Pulumi command a step runs in (components/upgrade/upgrade.py): the gates
    and the snapshot in `upgrade-gates`, every other step in its node's `<node>-upgrade`."""
    return "upgrade-gates" if step.action in (GATES, SNAPSHOT) else f"{step.node}-upgrade"


def drain_impact(batch: Iterable[str], placement: dict[str, dict[str, int]],
                 replicas: dict[str, int]) -> tuple[list[str], list[str]]:
    """(models that lose a replica, models left with none) while `batch` drains.
    `placement`: node -> {model: ready replicas there} as observed; `replicas`:
    model -> ready replicas in the whole cluster."""
    gone: dict[str, int] = {}
    for node in batch:
        for model, count in placement.get(node, {}).items():
            gone[model] = gone.get(model, 0) + count
    lose = sorted(m for m, n in gone.items() if n > 0)
    none_left = sorted(m for m in lose if gone[m] >= replicas.get(m, gone[m]))
    return lose, none_left
