"""The serving layers under Pulumi's mock runtime: versions, edges, gateway, domain, canary."""
import json

import pytest

from components import versions
from components.serving.kserve import controller_images
from components.offline.graph import Graph
from components.offline.program import evaluate
from components.stack_file import stack_file_config


@pytest.fixture(scope="module")
def lab():
    evaluation = evaluate(stack_file_config("lab"))
    return evaluation, Graph(evaluation)


def with_serving(**serving):
    config = stack_file_config("lab")
    config["serving"] = {**config.get("serving", {}), **serving}
    return config


def with_models(models, runtimes=None):
    config = stack_file_config("lab")
    config["models"] = models
    if runtimes is not None:
        config["runtimes"] = runtimes
    return config


CHARTS = {
    "cert-manager-chart": ("cert-manager", versions.CERT_MANAGER_VERSION),
    "istio-base-chart": ("base", versions.ISTIO_VERSION),
    "istiod-chart": ("istiod", versions.ISTIO_VERSION),
    "istio-ingressgateway-chart": ("gateway", versions.ISTIO_VERSION),
    "kserve-crd-chart": (versions.KSERVE_CRD_CHART, versions.KSERVE_VERSION),
    "kserve-chart": (versions.KSERVE_CHART, versions.KSERVE_VERSION),
    "tigera-operator-chart": ("tigera-operator", versions.CALICO_VERSION),
}
MANIFESTS = {
    "knative-serving-crds": versions.KNATIVE_SERVING_CRDS_URL,
    "knative-serving-core": versions.KNATIVE_SERVING_CORE_URL,
    "knative-net-istio": versions.KNATIVE_NET_ISTIO_URL,
}


def test_every_layer_present_with_its_pinned_version(lab):
    evaluation, _ = lab
    for name, (chart, version) in CHARTS.items():
        release = evaluation.named(name)
        assert release.type == "kubernetes:helm.sh/v3:Release"
        assert (release.inputs["chart"], release.inputs["version"]) == (chart, version), name
    for name, url in MANIFESTS.items():
        manifest = evaluation.named(name)
        assert manifest.type == "kubernetes:yaml/v2:ConfigFile"
        assert manifest.inputs["file"] == url
    assert versions.KNATIVE_SERVING_VERSION in MANIFESTS["knative-serving-core"]
    assert versions.KNATIVE_NET_ISTIO_VERSION in MANIFESTS["knative-net-istio"]
    assert evaluation.named("isvc-kserve-test-tf-flower").type == \
        "kubernetes:serving.kserve.io/v1beta1:InferenceService"


def test_helm_release_names_are_fixed(lab):
    # A generated release name would change the gateway's labels and the webhook service names.
    evaluation, _ = lab
    assert evaluation.named("istio-ingressgateway-chart").inputs["name"] == "istio-ingressgateway"
    assert evaluation.named("cert-manager-chart").inputs["name"] == "cert-manager"
    assert evaluation.named("kserve-chart").inputs["name"] == "kserve"


def test_first_serving_layers_wait_for_every_node_ready(lab):
    _, graph = lab
    assert graph.waits_for("cert-manager-chart", "nodes-ready")
    assert graph.waits_for("istio-base-chart", "nodes-ready")


def test_istio_chain(lab):
    _, graph = lab
    assert "istio-base-chart" in graph.direct("istiod-chart")
    assert "istiod-chart" in graph.direct("istio-ingressgateway-chart")


def test_knative_after_istio(lab):
    _, graph = lab
    for manifest in MANIFESTS:
        assert graph.waits_for(manifest, "istio-ingressgateway-chart"), manifest
    assert graph.waits_for("knative-serving-core", "knative-serving-crds")
    assert graph.waits_for("knative-net-istio", "knative-serving-core")


def test_kserve_after_cert_manager_serves_its_webhook_and_after_knative(lab):
    evaluation, graph = lab
    webhook_wait = evaluation.named("cert-manager-webhook-ready")
    assert "NAMESPACE=cert-manager" in webhook_wait.inputs["create"]
    assert "SERVICE=cert-manager-webhook" in webhook_wait.inputs["create"]
    assert graph.waits_for("cert-manager-webhook-ready", "cert-manager-chart")
    for kserve in ("kserve-crd-chart", "kserve-chart"):
        assert graph.waits_for(kserve, "cert-manager-webhook-ready")
        assert graph.waits_for(kserve, "knative-net-istio")
        assert graph.waits_for(kserve, "knative-config-domain")
    assert graph.waits_for("kserve-chart", "kserve-crd-chart")


def test_models_only_after_the_kserve_webhook_has_endpoints(lab):
    evaluation, graph = lab
    webhook_wait = evaluation.named("kserve-webhook-ready")
    assert "SERVICE=kserve-webhook-server-service" in webhook_wait.inputs["create"]
    assert graph.waits_for("kserve-webhook-ready", "kserve-chart")
    assert graph.waits_for("isvc-kserve-test-tf-flower", "kserve-webhook-ready")
    assert graph.waits_for("isvc-kserve-test-tf-flower", "namespace-kserve-test")


def test_gateway_service_is_a_node_port_with_the_configured_port(lab):
    evaluation, _ = lab
    service = evaluation.named("istio-ingressgateway-chart").inputs["values"]["service"]
    assert service["type"] == "NodePort"
    http = [p for p in service["ports"] if p["name"] == "http2"]
    assert http == [{"name": "http2", "port": 80, "protocol": "TCP", "targetPort": 80,
                     "nodePort": 31903}]
    assert {p["name"] for p in service["ports"]} == {"status-port", "http2", "https"}
    other = evaluate(with_serving(ingressNodePort=30080)).named("istio-ingressgateway-chart")
    ports = {p["name"]: p.get("nodePort") for p in other.inputs["values"]["service"]["ports"]}
    assert ports["http2"] == 30080


def test_domain_is_configured(lab):
    evaluation, graph = lab
    patch = evaluation.named("knative-config-domain")
    assert patch.inputs["metadata"]["name"] == "config-domain"
    assert patch.inputs["metadata"]["namespace"] == "knative-serving"
    assert patch.inputs["data"] == {"example.com": ""}
    assert graph.waits_for("knative-config-domain", "knative-webhook-ready")
    custom = evaluate(with_serving(ingressDomain="models.lab.internal")).named("knative-config-domain")
    assert custom.inputs["data"] == {"models.lab.internal": ""}
    kserve = evaluation.named("kserve-chart").inputs["values"]["kserve"]["controller"]
    assert kserve["gateway"]["domain"] == "example.com"


def test_controller_images_contain_no_image_known_to_be_gone(lab):
    evaluation, _ = lab
    values = evaluation.named("kserve-chart").inputs["values"]
    images = controller_images(values)
    assert versions.KUBE_RBAC_PROXY_IMAGE in images
    assert f"kserve/kserve-controller:{versions.KSERVE_VERSION}" in images
    assert not images & set(versions.KNOWN_GONE_IMAGES)
    assert not any(image.startswith("gcr.io/kubebuilder/") for image in images)
    assert values["kserve"]["modelmesh"] == {"enabled": False}


def test_raw_deployment_graph_contains_no_knative():
    evaluation = evaluate(with_serving(deploymentMode="RawDeployment"))
    knative = [r.name for r in evaluation.registrations
               if "knative" in r.name.lower() or "knative" in r.type.lower()
               or "knative" in json.dumps(r.inputs.get("file", ""))]
    assert knative == []
    controller = evaluation.named("kserve-chart").inputs["values"]["kserve"]["controller"]
    assert controller["deploymentMode"] == "RawDeployment"
    assert evaluation.named("istio-ingress-class").inputs["spec"]["controller"] == \
        "istio.io/ingress-controller"
    host = evaluation.outputs["models"]["kserve-test/tf-flower"]["host"]
    assert host == "tf-flower.kserve-test.example.com"  # not KServe's ambiguous <name>-<namespace>


def test_default_model_is_tf_flower(lab):
    evaluation, _ = lab
    isvc = evaluation.named("isvc-kserve-test-tf-flower")
    assert isvc.inputs["metadata"]["name"] == "tf-flower"
    assert isvc.inputs["metadata"]["namespace"] == "kserve-test"
    model = isvc.inputs["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "tensorflow"}
    assert model["storageUri"] == "gs://kfserving-examples/models/tensorflow/flowers"
    assert model["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert isvc.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"


CUSTOM_RUNTIME = {
    "name": "custom-sklearn", "namespace": "kserve-test", "image": "kserve/sklearnserver:custom",
    "args": ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"],
    "env": {"PREDICT_PROBA": "True"},
    "modelFormats": [{"name": "sklearn", "version": "1"}],
}
IRIS = {"name": "sklearn-iris", "namespace": "kserve-test", "format": "sklearn",
        "runtime": "custom-sklearn", "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}


def test_custom_runtime_carries_its_args_and_env_and_models_wait_for_it():
    evaluation = evaluate(with_models([IRIS], runtimes=[CUSTOM_RUNTIME]))
    graph = Graph(evaluation)
    runtime = evaluation.named("runtime-kserve-test-custom-sklearn")
    assert runtime.type == "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"
    container = runtime.inputs["spec"]["containers"][0]
    assert container["image"] == "kserve/sklearnserver:custom"
    assert container["args"] == CUSTOM_RUNTIME["args"]
    assert "--model_name={{.Name}}" in container["args"]
    assert container["env"] == [{"name": "PREDICT_PROBA", "value": "True"}]
    assert runtime.inputs["spec"]["supportedModelFormats"] == [
        {"name": "sklearn", "autoSelect": True, "version": "1"}]
    assert graph.waits_for("runtime-kserve-test-custom-sklearn", "kserve-webhook-ready")
    assert "runtime-kserve-test-custom-sklearn" in graph.direct("isvc-kserve-test-sklearn-iris")
    isvc = evaluation.named("isvc-kserve-test-sklearn-iris")
    assert isvc.inputs["spec"]["predictor"]["model"]["runtime"] == "custom-sklearn"


CANARY = {"storageUri": "gs://kfserving-examples/models/tensorflow/flowers-2", "trafficPercent": 10}


def test_canary_on_a_fresh_model_deploys_the_primary_first():
    config = stack_file_config("lab")
    config["models"] = [{"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
                         "storageUri": "gs://kfserving-examples/models/tensorflow/flowers",
                         "canary": CANARY}]
    evaluation = evaluate(config)
    graph = Graph(evaluation)
    first = evaluation.named("isvc-kserve-test-tf-flower")
    rollout = evaluation.named("isvc-kserve-test-tf-flower-rollout")
    # The InferenceService is created with the primary alone, and waits for Ready...
    predictor = first.inputs["spec"]["predictor"]
    assert predictor["model"]["storageUri"].endswith("/flowers")
    assert "canaryTrafficPercent" not in predictor
    assert first.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    # ...and never updates its spec, so the split cannot reach it before the primary is up.
    assert "spec" in first.ignore_changes
    # The canary goes on top, only after the primary has rolled out.
    assert rollout.type == "kubernetes:serving.kserve.io/v1beta1:InferenceServicePatch"
    assert "isvc-kserve-test-tf-flower" in graph.direct(rollout.name)
    patched = rollout.inputs["spec"]["predictor"]
    assert patched["model"]["storageUri"].endswith("/flowers-2")
    assert patched["canaryTrafficPercent"] == 10
    assert rollout.inputs["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"
    assert graph.waits_for("smoke-predict-kserve-test-tf-flower", rollout.name)


def test_promote_and_roll_back_are_config_edits():
    base = {"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow"}
    promoted = evaluate(with_models([{**base, "storageUri": CANARY["storageUri"]}]))
    spec = promoted.named("isvc-kserve-test-tf-flower-rollout").inputs["spec"]["predictor"]
    assert spec["model"]["storageUri"].endswith("/flowers-2") and "canaryTrafficPercent" not in spec
    rolled_back = evaluate(with_models([{**base,
                                         "storageUri": "gs://kfserving-examples/models/tensorflow/flowers",
                                         "canary": {**CANARY, "trafficPercent": 0}}]))
    spec = rolled_back.named("isvc-kserve-test-tf-flower-rollout").inputs["spec"]["predictor"]
    assert spec["canaryTrafficPercent"] == 0


def test_kubernetes_objects_go_with_the_cluster(lab):
    evaluation, graph = lab
    teardown = graph.urn("cp1-kubeadm-init")
    for registration in evaluation.registrations:
        # Helm releases, objects and the yaml/v2 manifests (components) alike.
        if registration.type.startswith("kubernetes:") and \
                not registration.name.endswith("-rollout"):
            assert registration.deleted_with == teardown, registration.name
    assert evaluation.named("isvc-kserve-test-tf-flower-rollout").deleted_with == \
        graph.urn("isvc-kserve-test-tf-flower")


def test_smoke_prediction_and_outputs(lab):
    evaluation, graph = lab
    smoke = evaluation.named("smoke-predict-kserve-test-tf-flower")
    create = smoke.inputs["create"]
    assert "URL=http://10.0.2.21:31903/v1/models/tf-flower:predict" in create
    assert "HOST_HEADER=tf-flower.kserve-test.example.com" in create
    request = json.loads(smoke.inputs["stdin"])
    assert set(request["instances"][0]) == {"image_bytes", "key"}
    outputs = evaluation.outputs
    assert outputs["ingressAddress"] == "10.0.2.21" and outputs["ingressPort"] == 31903
    assert outputs["models"]["kserve-test/tf-flower"]["url"] == "http://10.0.2.21:31903/v1/models/tf-flower:predict"
    assert "-H 'Host: tf-flower.kserve-test.example.com'" in outputs["curl"]
    assert "smokePrediction" in outputs
    off = evaluate(with_serving(smokeTest=False))
    assert not [r for r in off.commands() if r.name.startswith("smoke-predict")]


def test_preview_of_a_fresh_stack_succeeds():
    evaluation = evaluate(stack_file_config("lab"), preview=True)
    assert evaluation.named("kserve-chart").type == "kubernetes:helm.sh/v3:Release"
    assert evaluation.named("isvc-kserve-test-tf-flower-rollout")


def test_second_evaluation_is_identical():
    first = evaluate(with_models([{"name": "tf-flower", "namespace": "kserve-test",
                                   "format": "tensorflow",
                                   "storageUri": "gs://kfserving-examples/models/tensorflow/flowers",
                                   "canary": CANARY}]))
    second = evaluate(with_models([{"name": "tf-flower", "namespace": "kserve-test",
                                    "format": "tensorflow",
                                    "storageUri": "gs://kfserving-examples/models/tensorflow/flowers",
                                    "canary": CANARY}]))
    assert sorted((r.name, r.plain) for r in first.registrations) == \
        sorted((r.name, r.plain) for r in second.registrations)


def test_one_model_name_in_two_namespaces_is_kept_apart_everywhere():
    flower = {"name": "tf-flower", "format": "tensorflow",
              "storageUri": "gs://kfserving-examples/models/tensorflow/flowers"}
    evaluation = evaluate(with_models([{**flower, "namespace": "kserve-test"},
                                       {**flower, "namespace": "ml",
                                        "storageUri": "gs://kfserving-examples/models/tensorflow/flowers-2"}]))
    graph = Graph(evaluation)
    models = evaluation.outputs["models"]
    assert set(models) == {"kserve-test/tf-flower", "ml/tf-flower"}
    assert models["kserve-test/tf-flower"]["host"] == "tf-flower.kserve-test.example.com"
    assert models["ml/tf-flower"]["host"] == "tf-flower.ml.example.com"
    assert {models[k]["namespace"] for k in models} == {"kserve-test", "ml"}
    # The smoke prediction goes to the first model: its Host header, its rollout.
    smoke = evaluation.named("smoke-predict-kserve-test-tf-flower")
    assert "HOST_HEADER=tf-flower.kserve-test.example.com" in smoke.inputs["create"]
    assert graph.waits_for(smoke.name, "isvc-kserve-test-tf-flower-rollout")
    assert not graph.waits_for(smoke.name, "isvc-ml-tf-flower-rollout")
    assert evaluation.named("isvc-ml-tf-flower").inputs["metadata"]["namespace"] == "ml"


def test_a_misspelt_project_prefix_stops_the_program_before_any_resource():
    with pytest.raises(Exception) as caught:
        evaluate(stack_file_config("lab"), namespaced={"kserve-clustr:serving": {"smokeTest": False}})
    assert "unknown config namespace 'kserve-clustr'; did you mean 'kserve-cluster'?" in str(caught.value)
    assert not [r for r in caught.value.registrations if r.custom]
