"""End to end on real machines, through the Automation API: up, predict, a
second up that changes nothing, destroy.

Skipped unless KSERVE_E2E_STACK names a stack file (stacks/Pulumi.<stack>.yaml)
whose nodes exist, and the Pulumi CLI is on the PATH. The README's runbook
("Run the end-to-end suite") says how. Environment:
  KSERVE_E2E_STACK           the stack, e.g. lab
  PULUMI_CONFIG_PASSPHRASE   the stack's secrets passphrase
  PULUMI_BACKEND_URL         default file://<repo>/.pulumi-state, as scripts/up.sh
  SSH_KEY_FILE               optional: stored as the secret sshPrivateKey first
  KSERVE_E2E_KEEP=1          leave the cluster up afterwards (no destroy)
"""
import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK = os.environ.get("KSERVE_E2E_STACK", "")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not STACK, reason="set KSERVE_E2E_STACK=<stack> to run `pulumi up` "
                       "on real machines (docs/operations.md, 'Run the end-to-end suite')"),
    pytest.mark.skipif(shutil.which("pulumi") is None,
                       reason="the Pulumi CLI is not on the PATH (https://www.pulumi.com/docs/install/)"),
]


def changes_other_than_same(summary):
    return {op: count for op, count in (summary.resource_changes or {}).items()
            if op != "same" and count}


@pytest.fixture(scope="module")
def stack():
    from pulumi import automation as auto
    assert (ROOT / "stacks" / f"Pulumi.{STACK}.yaml").is_file(), f"no stacks/Pulumi.{STACK}.yaml"
    assert os.environ.get("PULUMI_CONFIG_PASSPHRASE") or os.environ.get(
        "PULUMI_CONFIG_PASSPHRASE_FILE"), "set PULUMI_CONFIG_PASSPHRASE for the stack's secrets"
    backend = os.environ.get("PULUMI_BACKEND_URL") or f"file://{ROOT}/.pulumi-state"
    if backend.startswith("file://"):
        Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    workspace = auto.LocalWorkspaceOptions(work_dir=str(ROOT),
                                           env_vars={"PULUMI_BACKEND_URL": backend})
    selected = auto.create_or_select_stack(stack_name=STACK, work_dir=str(ROOT), opts=workspace)
    key_file = os.environ.get("SSH_KEY_FILE")
    if key_file:
        selected.set_config("sshPrivateKey",
                            auto.ConfigValue(Path(key_file).expanduser().read_text(), secret=True))
    yield selected
    if os.environ.get("KSERVE_E2E_KEEP") != "1":
        selected.destroy(on_output=print)  # also after a failure: leave no half-built lab


@pytest.fixture(scope="module")
def first_up(stack):
    return stack.up(on_output=print)


def test_up_builds_the_cluster_and_exports_the_endpoints(first_up):
    assert first_up.summary.result == "succeeded"
    outputs = first_up.outputs
    for name in ("kubeconfig", "apiEndpoint", "nodes", "ingressAddress", "ingressPort", "models"):
        assert name in outputs, f"output {name} missing"
    assert outputs["kubeconfig"].secret


def prediction_requests(models: dict, tokens: dict) -> list[tuple[str, "Endpoint", "str | None"]]:
    """(output key, endpoint, token) for every model, as scripts/predict.py addresses it:
    the stack output `models` (url, host, servedModels, needsToken) and `tokens`."""
    from components.serving.endpoints import from_outputs, token_from_outputs
    requests = []
    for key in sorted(models):
        endpoint = from_outputs(models, key)
        requests.append((key, endpoint, token_from_outputs(endpoint, tokens)))
    return requests


def test_a_prediction_through_the_ingress(first_up, tmp_path):
    sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
    from components.serving.v1_protocol import SMOKE_IMAGE_JPEG, parse_predictions
    from predict import predict
    outputs = first_up.outputs
    tokens = outputs["tokens"].value if "tokens" in outputs else {}
    # Protected models are called over https, checked against the stack's CA.
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(outputs["ingressCaCertificate"].value or "")
    for key, endpoint, token in prediction_requests(outputs["models"].value, tokens):
        answer = predict(endpoint.base_url, endpoint.host, endpoint.served_name, SMOKE_IMAGE_JPEG,
                         token=token, ca_file=ca_file if endpoint.base_url.startswith("https:")
                         else None)
        predictions = parse_predictions(answer)
        assert predictions and predictions[0].scores, f"{key}: {answer}"


def test_a_second_up_changes_nothing(stack, first_up):
    second = stack.up(on_output=print)
    assert second.summary.result == "succeeded"
    assert changes_other_than_same(second.summary) == {}, second.summary.resource_changes


def test_destroy_removes_every_resource(stack, first_up):
    if os.environ.get("KSERVE_E2E_KEEP") == "1":
        pytest.skip("KSERVE_E2E_KEEP=1: the cluster stays up")
    result = stack.destroy(on_output=print)
    assert result.summary.result == "succeeded"
    assert not stack.export_stack().deployment.get("resources")
