"""Refusing to drop a project while models of its namespace stay in the stack file.

A model in a namespace that is no project needs no token. So removing a project
from `access.projects` while its models stay would serve them to anyone, silently.
The refusal has to know which namespaces were projects at the last `pulumi up`.

Where "the last run's projects" come from: the stack's own outputs, read back through
components/previous_outputs.py (the `projects` output, and for stacks deployed
before it existed, the `project` field of the `models` output). Why this and not the
`kserve-cluster/project` label read from the cluster over SSH: a command on the
control plane does not run in a preview; a run that failed half-way (after the
namespace lost its label, say) cannot make the next one forget the project; no extra
command on the control plane. A first `up` has nothing to compare with: not refused.
What it cannot see: a stack whose state was thrown away (then the cluster is usually
new too) or projects changed outside Pulumi.

The verdict gates the preflight (components/preflight/gate.py): every node's
preparation, and so everything on the cluster, waits for it, so a refused run
changes nothing.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

import pulumi

from components.access.config import AccessConfig
from components.previous_outputs import PreviousOutputs
from components.problems import ConfigError, Problems
from components.serving.config import Model

# The stack output that lists the project namespaces (exported by __main__.py).
PROJECTS_OUTPUT = "projects"
MODELS_OUTPUT = "models"
KEPT = "no project removed while its models stay"


class ProjectRemovalRefused(pulumi.RunError):
    """A RunError: Pulumi prints the message without a traceback."""


def previous_project_namespaces(outputs: Optional[Mapping[str, Any]]) -> set[str]:
    """The namespaces that were projects at the last successful `pulumi up`, from its
    outputs (an empty set on a first `up`)."""
    outputs = outputs or {}
    found: set[str] = set()
    listed = outputs.get(PROJECTS_OUTPUT)
    if isinstance(listed, list):
        found.update(name for name in listed if isinstance(name, str))
    # Stacks deployed before the `projects` output: each model in a project said so.
    models = outputs.get(MODELS_OUTPUT)
    if isinstance(models, Mapping):
        for entry in models.values():
            if isinstance(entry, Mapping) and isinstance(entry.get("project"), str):
                found.add(entry["project"])
    return found


def opened_models(previous: Iterable[str], access: AccessConfig,
                  models: Iterable[Model]) -> dict[str, list[tuple[int, Model]]]:
    """By namespace that was a project and is none now: the stack file's models in it
    that are not `public: true` (with their index in `models`), which would become
    callable without a token."""
    previous = set(previous)
    opened: dict[str, list[tuple[int, Model]]] = {}
    for index, model in enumerate(models):
        if (model.namespace in previous and access.project_of(model.namespace) is None
                and not model.public):
            opened.setdefault(model.namespace, []).append((index, model))
    return opened


def refusal(previous: Iterable[str], access: AccessConfig,
            models: Iterable[Model]) -> Optional[ConfigError]:
    """The stack-config error for every project dropped while its models stay, or None."""
    opened = opened_models(previous, access, models)
    if not opened:
        return None
    problems = Problems()
    current = [p.name for p in access.projects]
    for namespace, found in sorted(opened.items()):
        names = ", ".join(f"{m.name} (models[{i}])" for i, m in found)
        problems.add("projects", current,
                     f"project {namespace} was removed (it was a project at the last "
                     f"`pulumi up`), but its namespace {namespace} keeps models in the stack "
                     f"file: {names}. Without the project they would be served to anyone "
                     "who reaches the gateway, without a token.",
                     f"add `public: true` to the models, or move or remove them (or keep "
                     f"project {namespace}).")
    return ConfigError(problems.items)


def verdict(outputs: Optional[Mapping[str, Any]], access: AccessConfig,
            models: Iterable[Model]) -> str:
    error = refusal(previous_project_namespaces(outputs), access, models)
    if error is not None:
        raise ProjectRemovalRefused(str(error))
    return KEPT


def removal_gate(access: AccessConfig, models: Iterable[Model],
                 previous: Optional[PreviousOutputs] = None) -> pulumi.Output[str]:
    """`KEPT`, or a refusal raised when the last run's outputs are read."""
    models = list(models)
    previous = previous or PreviousOutputs()
    return previous.read(PROJECTS_OUTPUT, MODELS_OUTPUT).apply(
        lambda outputs: verdict(outputs, access, models))
