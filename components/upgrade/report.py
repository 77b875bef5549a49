"""An upgrade in words: numbered steps per node, in order, each node's under the
Pulumi command that runs them, with what each drain displaces (the models that
lose a replica, and any left with none). Pure: plan.py's planner and
drain_impact over the stack's models; shown by scripts/plan.py and logged by
`pulumi up` before any node changes.

Where replicas run is read from no cluster (the plan contacts none; the program
reads only versions): they are assumed spread over the nodes that can run them,
as kube-scheduler's default spreading tends to place them, which it does not
promise. So a batch may displace more than shown, never a model that runs
elsewhere only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from components import versions
from components.stack_config import StackConfig
from components.upgrade.plan import (DRAIN, ObservedNode, UpgradePlan, UpgradeRefused, command_of,
                                     drain_impact, plan_upgrade, semver)

# KServe's default minReplicas (an InferenceService with none set runs one).
DEFAULT_REPLICAS = 1
PLACEMENT_NOTE = ("Replicas are assumed spread over the nodes that can run them (kube-scheduler "
                  "spreads a model's replicas by default but does not promise to): a batch may "
                  "displace more than shown, and a model with no more replicas than a batch has "
                  "workers can lose them all in it.")


@dataclass(frozen=True)
class ModelDemand:
    key: str  # namespace/name
    replicas: int  # the replicas it keeps running (minReplicas)
    gpu: bool  # runs on GPU workers only


def demands(config: StackConfig) -> list[ModelDemand]:
    result = []
    for model in config.serving.models:
        given = model.scaling.min_replicas if model.scaling else None
        result.append(ModelDemand(model.key, DEFAULT_REPLICAS if given is None else given,
                                  model.gpu > 0))
    return result


def assumed_placement(config: StackConfig) -> dict[str, dict[str, int]]:
    """node -> {model: replicas}: each model's replicas dealt round the nodes that
    can run them (GPU workers for a GPU model, the other workers for the rest; the
    control plane only when there is no worker: kubeadm taints it otherwise), one
    after another."""
    hosts = [n for n in config.workers] or [config.control_plane]
    placement: dict[str, dict[str, int]] = {n.name: {} for n in config.nodes}
    turn = 0
    for model in demands(config):
        # A GPU worker is tainted for GPU pods only (components/gpu).
        eligible = [n.name for n in hosts if bool(n.gpu) == model.gpu]
        for _ in range(model.replicas if eligible else 0):
            node = eligible[turn % len(eligible)]
            placement[node][model.key] = placement[node].get(model.key, 0) + 1
            turn += 1
    return placement


def report_data(plan: UpgradePlan, config: StackConfig, assumed_from: str = "") -> dict[str, Any]:
    """The plan as data (scripts/plan.py --json): per node, its command and numbered
    steps; a drain step carries what its batch displaces."""
    placement = assumed_placement(config)
    replicas = {m.key: m.replicas for m in demands(config)}
    batch_of = {name: batch for batch in plan.batches for name in batch}
    blocks: list[dict[str, Any]] = []
    for step in plan.steps:
        command = command_of(step)
        if not blocks or blocks[-1]["command"] != command:
            # The gates run on the control plane whose snapshot they take.
            node = step.node or next((s.node for s in plan.steps if s.node), "")
            blocks.append({"command": command, "node": node, "batch": step.batch, "steps": []})
        entry: dict[str, Any] = {"number": step.number, "action": step.action, "text": step.text}
        if step.action == DRAIN:
            together = batch_of.get(step.node, (step.node,))
            lose, none_left = drain_impact(together, placement, replicas)
            entry["drainedWith"] = [n for n in together if n != step.node]
            entry["losesAReplica"] = [
                {"model": m, "of": replicas[m],
                 "left": max(replicas[m] - sum(placement.get(n, {}).get(m, 0) for n in together), 0)}
                for m in lose]
            entry["noneLeft"] = none_left
        blocks[-1]["steps"].append(entry)
    return {"current": plan.current, "target": plan.target, "kind": plan.kind,
            "currentFrom": assumed_from, "finished": list(plan.finished),
            "batches": [list(b) for b in plan.batches], "commands": blocks,
            "placementNote": PLACEMENT_NOTE}


def _drain_words(entry: dict[str, Any]) -> str:
    together = f" (drained with {', '.join(entry['drainedWith'])})" if entry["drainedWith"] else ""
    if not entry["losesAReplica"]:
        return f"displaces no model replica{together}"
    losing = ", ".join(f"{m['model']} ({m['left']} of {m['of']} left)" if m["left"] > 0
                       else f"{m['model']} (NONE left)" for m in entry["losesAReplica"])
    words = f"displaces{together}: {losing}"
    if entry["noneLeft"]:
        words += (f"; {', '.join(entry['noneLeft'])} cannot answer until its pods run again "
                  "elsewhere (a minReplicas above the batch size keeps one up)")
    return words


KIND_WORDS = {"patch": "a patch upgrade", "minor": "a minor upgrade",
              "none": "the rest of an upgrade"}


def report_lines(data: dict[str, Any]) -> list[str]:
    batches = len(data["batches"])
    source = f"; the cluster's version from {data['currentFrom']}" if data["currentFrom"] else ""
    lines = [f"Upgrade {data['current']} -> {data['target']}: {KIND_WORDS[data['kind']]}{source}; "
             f"{len(data['commands'])} command(s), the workers in {batches} batch(es)"]
    if data["finished"]:
        lines.append(f"  already at {data['target']}, skipped: {', '.join(data['finished'])}")
    for block in data["commands"]:
        where = f"on {block['node']}" + (f", batch {block['batch']} of {batches}" if block["batch"] else "")
        lines.append(f"  {block['command']} ({where}):")
        for entry in block["steps"]:
            lines.append(f"    {entry['number']:>3}. {entry['text']}")
            if entry["action"] == DRAIN:
                lines.append(f"         {_drain_words(entry)}")
    lines.append(f"  {data['placementNote']}")
    return lines


def offline_note(target: str, current: Optional[str]) -> str:
    """What the offline plan says when it does not know the cluster's version."""
    if current is None:  # the example: the last patch of the minor before, if it has a train
        major, minor_number = semver(target)[:2]
        before = versions.TRAINS.get(f"{major}.{minor_number - 1}")
        current = before.kubernetes_version if before else target
    return (f"Upgrade: the plan contacts no node, so it cannot know which version the cluster "
            f"runs. A new cluster is built at {target} (each node's upgrade command then finds "
            f"nothing to do). For a running cluster, give the version it runs (`kubectl get "
            f"nodes` shows it), e.g. --from-version {current}, to see the numbered "
            f"steps to {target}.")


def offline_upgrade(config: StackConfig, from_version: Optional[str]) -> dict[str, Any]:
    """The upgrade section of the offline plan: every stack node taken to run
    `from_version` (the plan reads no node). {"note"} when it is not given or
    there is nothing to do, {"refused"} when `pulumi up` would refuse it, else
    report_data."""
    target = config.kubernetes.version
    if not from_version:
        return {"target": target, "note": offline_note(target, None)}
    from_version = from_version.lstrip("v")
    observed = [ObservedNode(n.name, n.role, from_version,
                             from_version if n.is_control_plane else "") for n in config.nodes]
    try:
        plan = plan_upgrade(observed, target, config.upgrade.max_unavailable,
                            [n.name for n in config.nodes])
    except UpgradeRefused as refused:
        return {"target": target, "current": from_version, "refused": refused.problems}
    if not plan.steps:
        return {"target": target, "current": from_version,
                "note": f"Upgrade: none; the cluster runs {target} already (--from-version)."}
    return report_data(plan, config, assumed_from="--from-version")


def valid_version(text: str) -> bool:
    try:
        semver(text)
    except ValueError:
        return False
    return True
