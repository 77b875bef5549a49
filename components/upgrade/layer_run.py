"""This run's layer versions, from what the last `pulumi up` recorded (Pulumi side).

Where "what the cluster runs now" comes from: the stack's own `layerVersions` output
(the Kubernetes version and each layer's, exported by every run), read back through a
StackReference to this stack before any component is built. Why before, and as plain
values rather than an Output of a command on the control plane:
- `pulumi preview` reads it too (a remote command does not run in a preview), so the
  preview shows the Helm versions this run installs and the warning about runs left;
- the shape of the resources follows the versions (KServe's chart split, Calico's CRD
  chart, the deployment mode's name), and a resource cannot exist depending on an Output;
- a failed run leaves the outputs of the last successful one: the re-run plans the same
  steps again, which Helm finds done (the resumable case).
What it cannot see: layers changed outside Pulumi. A stack deployed before the output
existed has no record: its layers are taken as the train's (the behaviour before).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import pulumi
from pulumi.runtime.sync_await import _sync_await

from components.previous_outputs import self_reference_name
from components.stack_config import StackConfig
from components.upgrade.layers import KUBERNETES, LayerPlan, plan_layers

LAYERS_OUTPUT = "layerVersions"
REFERENCE_NAME = "previous-layers"


class LayerPlanRefused(pulumi.RunError):
    """A RunError: Pulumi prints the message without a traceback."""


def recorded_versions(value: Any) -> Optional[dict[str, str]]:
    """The last run's `layerVersions` output, when it is one."""
    if isinstance(value, dict) and isinstance(value.get(KUBERNETES), str):
        return {k: v for k, v in value.items() if isinstance(v, str)}
    return None


def read_previous() -> Optional[dict[str, str]]:
    """The last successful run's record (None: a first `up`, or no record yet). Read
    synchronously, as Pulumi's own synchronous invokes are, so that it is a plain value
    before the components are built."""
    reference = pulumi.StackReference(REFERENCE_NAME, stack_name=self_reference_name())
    details = _sync_await(reference.get_output_details(LAYERS_OUTPUT))
    return recorded_versions(details.value if details.value is not None else details.secret_value)


def plan_for(config: StackConfig, previous: Optional[dict[str, str]]) -> LayerPlan:
    plan = plan_layers(previous or {}, config.kubernetes.version)
    if plan.problems:
        raise LayerPlanRefused(
            "the layers cannot follow kubernetes.version = "
            f"{config.kubernetes.version!r}; nothing was changed on any node.\n"
            + "\n".join(f"  - kserve-cluster:kubernetes.version: {p}" for p in plan.problems))
    return plan


def run_config(config: StackConfig, plan: LayerPlan) -> StackConfig:
    """The stack config this run acts on: the nodes at the version the plan lets them
    reach, the serving layers at this run's versions."""
    kubernetes = dataclasses.replace(config.kubernetes, version=plan.kubernetes)
    serving = dataclasses.replace(config.serving, train=plan.train())
    return dataclasses.replace(config, kubernetes=kubernetes, serving=serving)


def layer_run(config: StackConfig) -> tuple[StackConfig, LayerPlan]:
    """This run's config and plan; logs the steps of this run and the runs left."""
    plan = plan_for(config, read_previous())
    if plan.moves:
        pulumi.log.info("layers in this run: " + ", ".join(m.text() for m in plan.moves))
    warning = plan.warning()
    if warning:
        pulumi.log.warn(warning)
    return run_config(config, plan), plan
