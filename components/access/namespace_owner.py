"""One owner per Namespace, and no delete when the owner changes.

A namespace that is a project's is created by the Projects component; any
other namespace of a model or runtime by the serving layer's ModelWorkloads
(`namespace-<name>` in both). When a stack file turns a model namespace into a
project, or drops a project whose namespace still holds models, the owner
changes: without an alias Pulumi would create the Namespace again under the
new owner (refused or adopted, as it exists) and then delete the old resource,
which deletes the namespace with everything in it. With these aliases the
engine sees one resource that moved.
"""
from __future__ import annotations

import pulumi

SERVING_TYPE = "kserve-cluster:serving:Serving"
MODELS_TYPE = "kserve-cluster:serving:ModelWorkloads"
MODELS_NAME = "models"
PROJECTS_TYPE = "kserve-cluster:access:Projects"
PROJECTS_NAME = "projects"


def component_urn(types: list[str], name: str) -> str:
    """The URN of a component of this stack, parents' types first."""
    return (f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::"
            f"{'$'.join(types)}::{name}")


def moved_from_models() -> list[pulumi.Alias]:
    """For a project's Namespace: it may have been a model namespace before."""
    return [pulumi.Alias(parent=component_urn([SERVING_TYPE, MODELS_TYPE], MODELS_NAME))]


def moved_from_projects() -> list[pulumi.Alias]:
    """For a model namespace: it may have been a project's before."""
    return [pulumi.Alias(parent=component_urn([PROJECTS_TYPE], PROJECTS_NAME))]
