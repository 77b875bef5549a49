"""Which model a load test sends to, and how: from the stack file or given outright.

The stack-file path is the one scripts/predict.py takes (components/stack_file.py,
the V1 host and path of components/serving/v1_protocol.py): the control plane's
address and the ingress node port, the Host header the ingress routes on.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from components.serving.config import SERVERLESS, Model, ServingConfig
from components.stack_file import parse_stack_file, print_warnings
from components.serving.v1_protocol import model_host

TOKEN_ENV = "KSERVE_TOKEN"


class TargetError(Exception):
    pass


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    host: str
    name: str
    namespace: Optional[str] = None
    model: Optional[Model] = None          # when read from the stack file
    serving: Optional[ServingConfig] = None


def choose_model(models, wanted: str, stack: str) -> Model:
    """`namespace/name`, or `name` when only one namespace has it."""
    found = [m for m in models if wanted in (m.key, m.name)]
    if len(found) == 1:
        return found[0]
    if found:
        raise TargetError(f"model {wanted!r} is in several namespaces of stack {stack}: "
                          f"{', '.join(m.key for m in found)}; give NAMESPACE/NAME")
    listed = ", ".join(m.key for m in models) or "none"
    raise TargetError(f"stack {stack} has no model {wanted!r}; it has: {listed}")


def from_stack(stack: str, wanted: str, stacks_dir: Optional[Path] = None,
               tool: str = "loadtest.py") -> Endpoint:
    config = parse_stack_file(stack, stacks_dir, path_exists=lambda _: True)  # no SSH needed
    print_warnings(config, tool)
    serving = config.serving
    model = choose_model(serving.models, wanted, stack)
    address = config.control_plane.address
    host = f"[{address}]" if ":" in address else address
    return Endpoint(f"http://{host}:{serving.ingress_node_port}",
                    model_host(serving.deployment_mode, model.name, model.namespace,
                               serving.ingress_domain),
                    model.name, model.namespace, model, serving)


def given(url: str, host: str, wanted: str) -> Endpoint:
    namespace, _, name = wanted.rpartition("/")
    return Endpoint(url, host, name, namespace or None)


def read_token(token: Optional[str], token_file: Optional[str],
               environ=os.environ) -> Optional[str]:
    """--token, else --token-file, else $KSERVE_TOKEN; None for a model without one."""
    if token and token_file:
        raise TargetError("give --token or --token-file, not both")
    if token_file:
        try:
            text = Path(token_file).expanduser().read_text().strip()
        except OSError as error:
            raise TargetError(f"cannot read the token file {token_file}: {error.strerror}") from None
        if not text:
            raise TargetError(f"the token file {token_file} is empty")
        return text
    return token or environ.get(TOKEN_ENV) or None


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
    return endpoint.serving.deployment_mode if endpoint.serving else SERVERLESS
