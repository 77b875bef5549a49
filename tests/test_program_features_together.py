"""The layers that came separately (model stores, projects and tokens, scaling and
monitoring) in one stack, under Pulumi's mock runtime: a TorchServe model in a
project's namespace, read from a claim that `pulumi up` fills, scaled on
concurrency, callable with the project's token, with monitoring on."""
import json

import pytest

from components.offline.graph import Graph
from components.offline.program import evaluate
from components.stack_file import stack_file_config
from access_fixtures import expires_in

MODEL_DIR = "examples/torchserve/model"
PASSWORD = {"grafanaAdminPassword": "not-a-real-password-1"}


def config():
    base = stack_file_config("lab")
    base.update({
        "projects": [{"name": "team-a", "quota": {"cpu": "8", "memory": "16Gi"},
                      "members": ["alice"], "tokens": [{"name": "ci", "expires": expires_in(300)}]}],
        "storage": {"provisioner": "local-path"},
        "modelStores": [{"name": "models", "namespace": "team-a", "size": "1Gi",
                         "upload": [{"from": MODEL_DIR, "to": "torchserve"}]}],
        "models": [{"name": "torchserve", "namespace": "team-a", "format": "pytorch",
                    "storageUri": "pvc://models/torchserve",
                    "resources": {"cpu": "1", "memory": "2Gi"},
                    "scaling": {"minReplicas": 1, "maxReplicas": 4, "metric": "concurrency",
                                "target": 5}}],
        "monitoring": {"enabled": True},
    })
    return base


@pytest.fixture(scope="module")
def stack():
    evaluation = evaluate(config(), secret_config=PASSWORD)
    return evaluation, Graph(evaluation)


def test_one_namespace_owner_and_the_store_lives_in_the_project(stack):
    evaluation, graph = stack
    namespaces = [r for r in evaluation.by_type("kubernetes:core/v1:Namespace")
                  if r.inputs["metadata"]["name"] == "team-a"]
    assert len(namespaces) == 1, [r.name for r in namespaces]
    claims = evaluation.by_type("kubernetes:core/v1:PersistentVolumeClaim")
    [claim] = [c for c in claims if c.inputs["metadata"]["name"] == "models"]
    assert claim.inputs["metadata"]["namespace"] == "team-a"
    assert graph.waits_for(claim.name, namespaces[0].name)


def test_the_model_waits_for_its_files_its_policy_and_carries_its_scaling(stack):
    evaluation, graph = stack
    first = evaluation.named("isvc-team-a-torchserve")
    uploads = [r.name for r in evaluation.commands() if "upload-to-claim.sh" in r.inputs["create"]]
    assert uploads and all(graph.waits_for(first.name, u) for u in uploads)
    policies = [r.name for r in evaluation.registrations if r.type.endswith(":AuthorizationPolicy")]
    assert policies and all(graph.waits_for(first.name, p) for p in policies)
    rollout = evaluation.named("isvc-team-a-torchserve-rollout")
    predictor = rollout.inputs["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    assert (predictor["scaleMetric"], predictor["scaleTarget"]) == ("concurrency", 5)
    assert predictor["model"]["storageUri"] == "pvc://models/torchserve"


def test_outputs_use_the_served_name_and_ask_for_the_token(stack):
    evaluation, _ = stack
    entry = evaluation.outputs["models"]["team-a/torchserve"]
    # The example's config.properties serves `adder`, not the InferenceService's name.
    assert entry["url"].endswith("/v1/models/adder:predict")
    assert entry["servedModels"] == ["adder"]
    assert entry["needsToken"] is True and entry["project"] == "team-a"
    assert 'Authorization: Bearer $TOKEN' in entry["curl"]


def test_the_smoke_step_asks_the_status_with_the_token_as_a_secret(stack):
    evaluation, _ = stack
    smoke = evaluation.named("smoke-predict-team-a-torchserve")
    create = smoke.inputs["create"]
    assert "METHOD=GET" in create and "TOKEN_ON_STDIN=1" in create and "CA_ON_STDIN=1" in create
    # A protected model in Serverless answers over https only: its host, the HTTPS node
    # port, resolved to the control plane's address.
    assert "URL=https://torchserve.team-a.example.com:31904/v1/models/adder " in create + " "
    assert "RESOLVE=torchserve.team-a.example.com:31904:10.0.2.21 " in create + " "
    assert "stdin" in smoke.secret_paths
    # stdin: the CA (base64, one line), then the token; neither is in the command.
    ca_line, token_line = smoke.inputs["stdin"].split("\n")[:2]
    assert ca_line and ca_line not in create and token_line.startswith("eyJ")
    token = evaluation.outputs["tokens"]
    assert token  # the tokens output exists; its values are secret
    assert "eyJ" not in smoke.plain  # no JWT in the plain inputs


def test_monitoring_comes_after_every_node_and_the_dashboard_has_the_model(stack):
    evaluation, graph = stack
    stack_release = next(r for r in evaluation.by_type("kubernetes:helm.sh/v3:Release")
                         if r.inputs["chart"] == "kube-prometheus-stack")
    assert graph.waits_for(stack_release.name, "nodes-ready")
    dashboards = [r for r in evaluation.by_type("kubernetes:core/v1:ConfigMap")
                  if "grafana_dashboard" in (r.inputs["metadata"].get("labels") or {})]
    [dashboard] = dashboards
    text = json.dumps(dashboard.inputs["data"])
    assert "torchserve" in text


def test_two_evaluations_are_identical():
    first = evaluate(config(), secret_config=PASSWORD)
    second = evaluate(config(), secret_config=PASSWORD)
    assert sorted((r.name, r.plain) for r in first.registrations) == \
        sorted((r.name, r.plain) for r in second.registrations)
