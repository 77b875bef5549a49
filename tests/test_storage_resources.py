"""InferenceServices that read a model store (pvc://) or an S3 store (serviceAccountName)
validate against KServe v0.13.1's CRD schema (upstream reference data, found through
components/upstream.py)."""
import pytest

from components.serving.models import FILES_REVISION_ENV, inference_service_spec
from components.stack_config import parse_stack_config
from components.storage.files import ROOT
from test_serving_resources import CRDS, strict_spec_schema
from upstream_needs import needs

pytestmark = needs(CRDS)

CONFIG = parse_stack_config({
    "nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}],
    "modelStores": [{"name": "models", "namespace": "kserve-test", "size": "1Gi",
                     "upload": [{"from": str(ROOT / "examples/torchserve/model"), "to": "torchserve"}]}],
    "storageSecrets": [{"name": "minio", "namespace": "kserve-test", "endpoint": "minio:9000",
                        "accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "example"}],
    "models": [
        {"name": "torchserve", "namespace": "kserve-test", "format": "pytorch",
         "storageUri": "pvc://models/torchserve",
         "canary": {"storageUri": "pvc://models/torchserve", "trafficPercent": 20}},
        {"name": "iris", "namespace": "kserve-test", "format": "sklearn",
         "storageUri": "s3://models/iris", "storageSecret": "minio",
         "canary": {"storageUri": "s3://models/iris-2", "trafficPercent": 10}},
    ]}, has_secret_private_key=True, secret_keys=frozenset({"storageSecrets"})).serving


@pytest.mark.parametrize("model", CONFIG.models, ids=lambda m: m.name)
@pytest.mark.parametrize("rollout", [False, True])
def test_store_and_s3_models_are_valid(model, rollout):
    spec = inference_service_spec(model, rollout, files_revision="0123456789abcdef")
    strict_spec_schema("inferenceservices.yaml", "v1beta1").validate(spec)


def test_the_fields_are_where_kserve_reads_them():
    torchserve, iris = CONFIG.models
    spec = inference_service_spec(torchserve, rollout=True, files_revision="abc")
    assert spec["predictor"]["model"]["storageUri"] == "pvc://models/torchserve"
    assert spec["predictor"]["model"]["env"] == [{"name": FILES_REVISION_ENV, "value": "abc"}]
    assert "serviceAccountName" not in spec["predictor"]
    spec = inference_service_spec(iris, rollout=True)
    assert spec["predictor"]["serviceAccountName"] == "minio"
    assert spec["predictor"]["canaryTrafficPercent"] == 10
    assert "env" not in spec["predictor"]["model"]


def test_a_misplaced_service_account_fails_the_schema():
    import jsonschema
    spec = inference_service_spec(CONFIG.models[1], rollout=False)
    spec["predictor"]["model"]["serviceAccountName"] = spec["predictor"].pop("serviceAccountName")
    with pytest.raises(jsonschema.ValidationError):
        strict_spec_schema("inferenceservices.yaml", "v1beta1").validate(spec)
