"""How the list of control planes may change from one `pulumi up` to the next.

Pure rules, and a gate that applies them to the last run's `nodes` output
(components/previous_outputs.py) before any node is touched:
- a target count is 1, 3 or 5: an even count tolerates no more failures than the odd
  count below it, and splits the etcd vote;
- one control plane removed per run: each removal takes an etcd member with it,
  and two at once can lose quorum (1 of 3 left);
- an even count is allowed only as the step between two odd ones, the result of
  removing exactly one from an odd count (3 -> 2 -> 1, 5 -> 4 -> 3), with a warning
  (and again in a run that leaves it as it was);
- a removal keeps a quorum of the members the cluster had: removing the only one
  (even with a new one added in the same run) loses every etcd member that holds
  the data;
- the first control plane of the last run (where `kubeadm init` ran, which every
  cluster step is tied to) stays: removing it would destroy the cluster;
- replacing one (add the new, remove the old, same run) keeps an odd count: the
  new one joins before the old one is removed, since Pulumi deletes last.
The live second line is scripts/node/control-plane-change.sh on cp1: real etcd
member health, before anything is deleted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import pulumi

from components.previous_outputs import PreviousOutputs
from components.problems import ConfigError, Problems

NODES_OUTPUT = "nodes"
CONTROL_PLANE_ROLE = "control-plane"
TARGETS = (1, 3, 5)
KEEP = "control-plane change checked"
RUNBOOK = "docs/operations.md, 'Remove a control plane'"


class ControlPlaneChangeRefused(pulumi.RunError):
    """A RunError: Pulumi prints the message without a traceback."""


@dataclass
class Change:
    previous: Optional[list[str]]  # None: a first `up`, nothing to compare with
    current: list[str]
    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def previous_control_planes(outputs: Optional[Mapping[str, Any]]) -> Optional[list[str]]:
    """The control planes of the last successful `pulumi up` in their order (the first
    is where kubeadm init ran), from its `nodes` output; None on a first `up`."""
    nodes = (outputs or {}).get(NODES_OUTPUT)
    if not isinstance(nodes, list):
        return None
    names = [n.get("name") for n in nodes
             if isinstance(n, Mapping) and n.get("role") == CONTROL_PLANE_ROLE]
    names = [n for n in names if isinstance(n, str)]
    return names or None


def change_of(previous: Optional[Sequence[str]], current: Sequence[str]) -> Change:
    current = list(current)
    if not previous:
        return Change(None, current)
    previous = list(previous)
    return Change(previous, current,
                  removed=[n for n in previous if n not in current],
                  added=[n for n in current if n not in previous])


def check_change(change: Change, problems: Problems) -> None:
    """Adds the refusals and warnings of one change of the control planes."""
    count = len(change.current)
    now = list(change.current)
    if change.previous is None:
        if count % 2 == 0:
            problems.add("nodes", now,
                         f"{count} control planes as the cluster's first count: an even count "
                         f"tolerates no more failures than {count - 1} and splits the etcd vote.",
                         f"give {count - 1} or {count + 1} nodes role: control-plane.")
        return
    before = len(change.previous)
    if len(change.removed) > 1:
        problems.add("nodes", now,
                     f"removes {len(change.removed)} control planes in one run "
                     f"({', '.join(change.removed)}); each takes an etcd member with it, and "
                     "two at once can lose quorum.",
                     f"put all but one back (e.g. keep {', '.join(change.removed[1:])}), run "
                     f"pulumi up, then remove the next one in another run ({RUNBOOK}).")
    first = change.previous[0]
    if change.removed and before - len(change.removed) < 1:
        problems.add("nodes", now,
                     f"removes {', '.join(change.removed)}, the only etcd member the cluster "
                     "has: no member would keep quorum, the new control plane would join "
                     "nothing and the cluster's data would go with it.",
                     f"keep {first}: add control planes first (one, then three), and "
                     "restore from a snapshot to move the cluster to new machines "
                     "(docs/operations.md, 'etcd backup and restore').")
    elif first in change.removed:
        problems.add("nodes", now,
                     f"removes {first}, the first control plane, where kubeadm init ran; "
                     "every cluster step is tied to it, so removing it destroys the cluster.",
                     f"keep {first} first among the control planes; replace another one, or "
                     "restore from a snapshot on a new first control plane "
                     "(docs/operations.md, 'etcd backup and restore').")
    elif change.current and change.current[0] != first:
        problems.add("nodes", now,
                     f"lists {change.current[0]} as the first control plane, but the cluster "
                     f"was initialised on {first}; the first one listed is where kubeadm "
                     "init runs.",
                     f"list {first} first among the nodes with role: control-plane.")
    if count % 2 == 0:
        shrink = len(change.removed) == 1 and not change.added and before % 2 == 1
        # A run that leaves an even count as it was (another change, the step of a
        # shrink still pending) changes no member: warned again, not refused.
        unchanged = not change.removed and not change.added
        if shrink or unchanged:
            step = f", after removing {change.removed[0]}" if shrink else " (as in the last run)"
            problems.warn("nodes", now,
                          f"{count} control planes{step}: an even count tolerates no more "
                          f"failures than {count - 1}.",
                          f"in the next run remove one more (to {count - 1}) or add one "
                          f"(to {count + 1}).")
        elif len(change.removed) <= 1:
            problems.add("nodes", now,
                         f"{count} control planes (from {before}): an even count is allowed "
                         "only as the step of removing one from an odd count, and tolerates "
                         f"no more failures than {count - 1}.",
                         f"give {count - 1} or {count + 1} nodes role: control-plane; to shrink, "
                         f"remove one per run ({RUNBOOK}).")


def refusal(outputs: Optional[Mapping[str, Any]],
            current: Sequence[str]) -> tuple[Optional[ConfigError], list[str]]:
    """(the error, or None; the warnings) for this run's control planes."""
    problems = Problems()
    check_change(change_of(previous_control_planes(outputs), current), problems)
    error = ConfigError(problems.items, problems.warnings) if problems.items else None
    return error, problems.warnings


def verdict(outputs: Optional[Mapping[str, Any]], current: Sequence[str],
            warn=pulumi.log.warn) -> str:
    error, warnings = refusal(outputs, current)
    if error is not None:
        raise ControlPlaneChangeRefused(str(error))
    for warning in warnings:
        warn(warning)
    return KEEP


def change_gate(previous: PreviousOutputs, current: Sequence[str]) -> pulumi.Output[str]:
    """`KEEP`, or a refusal raised when the last run's `nodes` output is read."""
    current = list(current)
    return previous.read(NODES_OUTPUT).apply(lambda outputs: verdict(outputs, current))
