"""The custom resources the program creates validate against KServe v0.13.1's CRD schemas.

The schemas are upstream reference data (not part of this repository), found
through components/upstream.py; these tests are skipped, with the reason, where
they are absent.
"""
from functools import lru_cache

import jsonschema
import pytest
import yaml

from components import upstream
from components.serving.config import Canary
from components.serving.models import inference_service_spec, runtime_spec
from components.stack_config import parse_stack_config
from upstream_needs import needs

CRDS = upstream.kserve_crds_dir()
pytestmark = needs(CRDS)


@lru_cache(maxsize=None)
def strict_spec_schema(file: str, version: str) -> jsonschema.Draft7Validator:
    # One validator per schema: checking the 700 KB schema itself on every call is slow.
    return jsonschema.Draft7Validator(strict(spec_schema(file, version)))


def spec_schema(file: str, version: str) -> dict:
    crd = yaml.load((CRDS.path / file).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    [entry] = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return entry["schema"]["openAPIV3Schema"]["properties"]["spec"]


def strict(schema):
    """Refuse fields the CRD does not know (a typo in a field name must fail)."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "properties" in schema and \
                "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    return schema


CONFIG = parse_stack_config({
    "nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}],
    "runtimes": [{"name": "custom-sklearn", "namespace": "kserve-test", "image": "kserve/sklearnserver:x",
                  "args": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"],
                  "env": {"PREDICT_PROBA": "True"}, "modelFormats": [{"name": "sklearn", "version": "1"}]}],
    "models": [
        {"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
         "storageUri": "gs://kfserving-examples/models/tensorflow/flowers",
         "canary": {"storageUri": "gs://kfserving-examples/models/tensorflow/flowers-2", "trafficPercent": 10}},
        {"name": "iris", "namespace": "kserve-test", "format": "sklearn", "runtime": "custom-sklearn",
         "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"},
    ]}, has_secret_private_key=True).serving


@pytest.mark.parametrize("model", CONFIG.models, ids=lambda m: m.name)
@pytest.mark.parametrize("rollout", [False, True])
def test_inference_service_specs_are_valid(model, rollout):
    validator = strict_spec_schema("inferenceservices.yaml", "v1beta1")
    validator.validate(inference_service_spec(model, rollout))


def test_a_misspelt_field_fails_the_schema():
    validator = strict_spec_schema("inferenceservices.yaml", "v1beta1")
    spec = inference_service_spec(CONFIG.models[0], rollout=True)
    spec["predictor"]["canaryTraficPercent"] = spec["predictor"].pop("canaryTrafficPercent")
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(spec)


def test_serving_runtime_spec_is_valid():
    strict_spec_schema("servingruntimes.yaml", "v1alpha1").validate(runtime_spec(CONFIG.runtimes[0]))


def test_canary_spec_shape():
    spec = inference_service_spec(CONFIG.models[0], rollout=True)
    assert isinstance(CONFIG.models[0].canary, Canary)
    assert spec["predictor"]["canaryTrafficPercent"] == 10
