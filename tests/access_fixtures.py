"""A stack with projects, members, tokens and models, evaluated under the mocks,
for the access tests (tests/test_access_*.py, tests/test_program_access.py)."""
from __future__ import annotations

import copy
import datetime
from typing import Any

import pulumi
from pulumi.runtime.sync_await import _sync_await

from components.access.config import utc_today
from components.offline.program import Evaluation
from components.stack_file import stack_file_config

FLOWERS = "gs://kfserving-examples/models/tensorflow/flowers"


def expires_in(days: int) -> str:
    """A token day `days` after today (UTC): within access.maxTokenDays (365)."""
    return (utc_today() + datetime.timedelta(days=days)).isoformat()


# The tokens' days, within a year of today as access.maxTokenDays wants them.
EXPIRES = {"team-a/ci": expires_in(300), "team-a/web": expires_in(200),
           "team-b/batch": expires_in(250)}

PROJECTS = [
    {"name": "team-a", "quota": {"cpu": "8", "memory": "32Gi", "gpu": 1, "pods": 20, "storage": "100Gi"},
     "members": ["alice", "bob"],
     "tokens": [{"name": "ci", "expires": EXPIRES["team-a/ci"]},
                {"name": "web", "expires": EXPIRES["team-a/web"]}]},
    {"name": "team-b", "quota": {"cpu": "2", "memory": "4Gi"}, "members": ["bob", "carol"],
     "tokens": [{"name": "batch", "expires": EXPIRES["team-b/batch"]}]},
    # A project with a protected model and no token: nobody can call it (a warning).
    {"name": "team-c", "members": ["dave"]},
]
MODELS = [
    {"name": "tf-flower", "namespace": "team-a", "format": "tensorflow", "storageUri": FLOWERS},
    {"name": "showcase", "namespace": "team-a", "format": "tensorflow", "storageUri": FLOWERS,
     "public": True},
    {"name": "iris", "namespace": "team-b", "format": "sklearn",
     "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
     "resources": {"cpu": "1", "memory": "2Gi"}},
    {"name": "locked", "namespace": "team-c", "format": "tensorflow", "storageUri": FLOWERS},
    {"name": "open-flower", "namespace": "kserve-test", "format": "tensorflow", "storageUri": FLOWERS},
]


def access_config(**changes: Any) -> dict:
    """The lab stack with PROJECTS and MODELS (and any key replaced by `changes`)."""
    config = stack_file_config("lab")
    config["projects"] = copy.deepcopy(PROJECTS)
    config["models"] = copy.deepcopy(MODELS)
    config.update(copy.deepcopy(changes))
    return config


def resolve(value: Any) -> Any:
    """A stack output's plain value (secrets unwrapped), for assertions."""
    if isinstance(value, pulumi.Output):
        return resolve(_sync_await(value.future()))
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v) for v in value]
    return value


def is_secret(value: pulumi.Output) -> bool:
    return bool(_sync_await(value.is_secret()))


def security_manifests(evaluation: Evaluation) -> list[dict]:
    """The Istio security resources the program declares (and the gateway's EnvoyFilter),
    as manifests."""
    return [{"apiVersion": r.inputs["apiVersion"], "kind": r.inputs["kind"],
             "metadata": r.inputs["metadata"], "spec": r.inputs["spec"]}
            for r in evaluation.registrations
            if r.type.startswith(("kubernetes:security.istio.io/", "kubernetes:networking.istio.io/"))]
