"""What a load test needs about its model beyond the endpoint
(components/serving/endpoints.py, shared with scripts/predict.py): the stack's
kubeconfig for reading replicas, and the model's deployment mode."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Optional

from components.serving.config import SERVERLESS
from components.serving.endpoints import Endpoint


def stack_kubeconfig(stack: str, run=subprocess.run) -> Optional[str]:
    """The stack's kubeconfig output in a private temporary file, when the Pulumi CLI
    is here and logged in to the stack's backend; None otherwise. The caller deletes it."""
    if shutil.which("pulumi") is None:
        return None
    try:
        result = run(["pulumi", "stack", "output", "kubeconfig", "--show-secrets", "--stack", stack],
                     capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0 or not result.stdout.strip():
        return None
    handle, path = tempfile.mkstemp(prefix="kserve-kubeconfig-")
    with os.fdopen(handle, "w") as file:  # mkstemp makes it 0600
        file.write(result.stdout)
    return path


def mode_of(endpoint: Endpoint) -> str:
    """The deployment mode of a model read from a stack file (Serverless otherwise)."""
    return endpoint.serving.deployment_mode if endpoint.serving else SERVERLESS
