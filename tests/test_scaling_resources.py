"""InferenceServices with scaling validate against KServe v0.13.1's CRD schema
(found through components/upstream.py; skipped with the reason where it is absent)."""
import jsonschema
import pytest

from components.serving.models import inference_service_spec
from components.stack_config import parse_stack_config
from test_serving_resources import CRDS, spec_schema, strict_spec_schema
from upstream_needs import needs

pytestmark = needs(CRDS)

NODES = [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}]
CANARY = {"storageUri": "gs://kfserving-examples/models/tensorflow/flowers-2", "trafficPercent": 10}
CASES = {
    "serverless-scale-to-zero-rps": ("Serverless", {"minReplicas": 0, "maxReplicas": 5, "metric": "rps",
                                                    "target": 20, "containerConcurrency": 8}),
    "serverless-concurrency-canary": ("Serverless", {"minReplicas": 1, "maxReplicas": 3,
                                                     "metric": "concurrency", "target": 4}),
    "serverless-cpu": ("Serverless", {"minReplicas": 1, "maxReplicas": 4, "metric": "cpu", "target": 60}),
    "raw-cpu": ("RawDeployment", {"minReplicas": 2, "maxReplicas": 6, "metric": "cpu", "target": 75}),
    "raw-memory": ("RawDeployment", {"minReplicas": 1, "maxReplicas": 3, "metric": "memory", "target": 80}),
    "raw-rps": ("RawDeployment", {"minReplicas": 1, "maxReplicas": 4, "metric": "rps", "target": 30}),
}


def parsed(name):
    mode, scaling = CASES[name]
    item = {"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
            "storageUri": "gs://kfserving-examples/models/tensorflow/flowers", "scaling": scaling}
    if name.endswith("canary"):
        item["canary"] = CANARY
    return parse_stack_config({"nodes": NODES, "serving": {"deploymentMode": mode}, "models": [item],
                               "monitoring": {"enabled": True}, "grafanaAdminPassword": "long-enough"},
                              has_secret_private_key=True,
                              secret_keys=frozenset({"grafanaAdminPassword"})).serving.models[0]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("rollout", [False, True])
def test_specs_with_scaling_are_valid(name, rollout):
    strict_spec_schema("inferenceservices.yaml", "v1beta1").validate(
        inference_service_spec(parsed(name), rollout))


def test_the_crd_knows_the_metrics_this_project_uses():
    predictor = spec_schema("inferenceservices.yaml", "v1beta1")["properties"]["predictor"]["properties"]
    assert set(predictor["scaleMetric"]["enum"]) == {"cpu", "memory", "concurrency", "rps"}
    for field in ("minReplicas", "maxReplicas", "scaleTarget", "containerConcurrency"):
        assert predictor[field]["type"] == "integer", field


def test_a_wrong_type_fails_the_schema():
    spec = inference_service_spec(parsed("raw-cpu"), rollout=True)
    spec["predictor"]["scaleTarget"] = "75%"
    with pytest.raises(jsonschema.ValidationError):
        strict_spec_schema("inferenceservices.yaml", "v1beta1").validate(spec)
