"""The monitoring layer and per-model scaling under Pulumi's mock runtime."""
import json

import pytest

from components import versions
from components.monitoring import values as mv
from components.offline.graph import Graph
from components.offline.program import evaluate
from components.stack_file import stack_file_config

PASSWORD = "lab-grafana-Pa55word"
SECRET = {"grafanaAdminPassword": PASSWORD}
CANARY = {"storageUri": "gs://kfserving-examples/models/tensorflow/flowers-2", "trafficPercent": 10}
FLOWER = {"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
          "storageUri": "gs://kfserving-examples/models/tensorflow/flowers", "canary": CANARY,
          "scaling": {"minReplicas": 0, "maxReplicas": 5, "metric": "concurrency", "target": 4,
                      "containerConcurrency": 8}}
IRIS = {"name": "iris", "namespace": "team-a", "format": "sklearn",
        "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
        "scaling": {"minReplicas": 1, "maxReplicas": 3, "metric": "cpu", "target": 60}}
MONITORING_RESOURCES = ("monitoring-namespace", "grafana-admin-secret", "kube-prometheus-stack-chart",
                        "prometheus-adapter-chart", "models-dashboard")


def lab(models=(FLOWER, IRIS), mode="Serverless", monitoring=True, **serving):
    config = stack_file_config("lab")
    config["models"] = list(models)
    config["serving"] = {"deploymentMode": mode, **serving}
    if monitoring:
        config["monitoring"] = {"enabled": True, "grafanaNodePort": 30300, "retention": "2d"}
    return config


@pytest.fixture(scope="module")
def serverless():
    evaluation = evaluate(lab(), secret_config=SECRET)
    return evaluation, Graph(evaluation)


def test_monitoring_stack_after_every_node_is_ready(serverless):
    evaluation, graph = serverless
    chart = evaluation.named("kube-prometheus-stack-chart")
    assert chart.type == "kubernetes:helm.sh/v3:Release"
    assert (chart.inputs["chart"], chart.inputs["version"], chart.inputs["name"],
            chart.inputs["namespace"]) == ("kube-prometheus-stack", versions.KUBE_PROMETHEUS_STACK_VERSION,
                                           "kube-prometheus-stack", "monitoring")
    assert chart.inputs["repositoryOpts"]["repo"] == versions.PROMETHEUS_COMMUNITY_CHART_REPO
    assert graph.waits_for("kube-prometheus-stack-chart", "nodes-ready")
    assert graph.waits_for("kube-prometheus-stack-chart", "grafana-admin-secret")
    assert graph.waits_for("kube-prometheus-stack-chart", "monitoring-namespace")


def test_dashboards_and_scrape_configs_after_the_stack(serverless):
    evaluation, graph = serverless
    monitors = [r.name for r in evaluation.by_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")]
    assert sorted(monitors) == ["podmonitor-istio-ingressgateway",
                                "podmonitor-knative-autoscaler-activator",
                                "podmonitor-knative-queue-proxy", "podmonitor-kserve-model-servers"]
    for name in monitors + ["models-dashboard", "prometheus-adapter-chart"]:
        assert graph.waits_for(name, "kube-prometheus-stack-chart"), name
    dashboard = evaluation.named("models-dashboard").inputs
    assert dashboard["metadata"]["labels"] == {"grafana_dashboard": "1"}
    board = json.loads(dashboard["data"]["kserve-cluster-models.json"])
    assert [p["title"] for p in board["panels"] if p["type"] == "row"] == \
        ["kserve-test/tf-flower", "team-a/iris"]
    queue = evaluation.named("podmonitor-knative-queue-proxy").inputs["spec"]
    assert queue["namespaceSelector"] == {"matchNames": ["kserve-test", "team-a"]}


def test_each_models_scaling_reaches_its_inference_service_canary_included(serverless):
    evaluation, _ = serverless
    for name in ("isvc-kserve-test-tf-flower", "isvc-kserve-test-tf-flower-rollout"):
        resource = evaluation.named(name).inputs
        predictor = resource["spec"]["predictor"]
        assert (predictor["minReplicas"], predictor["maxReplicas"], predictor["scaleMetric"],
                predictor["scaleTarget"], predictor["containerConcurrency"]) == (0, 5, "concurrency", 4, 8)
        assert resource["metadata"]["annotations"]["autoscaling.knative.dev/class"] == \
            "kpa.autoscaling.knative.dev"
    rollout = evaluation.named("isvc-kserve-test-tf-flower-rollout").inputs["spec"]["predictor"]
    assert rollout["canaryTrafficPercent"] == 10
    assert rollout["model"]["storageUri"].endswith("flowers-2")
    iris = evaluation.named("isvc-team-a-iris-rollout").inputs
    assert (iris["spec"]["predictor"]["scaleMetric"], iris["spec"]["predictor"]["scaleTarget"]) == ("cpu", 60)
    assert iris["metadata"]["annotations"]["autoscaling.knative.dev/class"] == "hpa.autoscaling.knative.dev"


def test_the_first_inference_service_is_never_updated(serverless):
    evaluation, _ = serverless
    assert evaluation.named("isvc-team-a-iris").ignore_changes == ["spec", "metadata.annotations"]


def test_knative_hpa_class_installed_after_core_when_a_model_scales_on_cpu(serverless):
    evaluation, graph = serverless
    hpa = evaluation.named("knative-serving-hpa")
    assert hpa.inputs["file"] == versions.KNATIVE_SERVING_HPA_URL
    assert versions.KNATIVE_SERVING_VERSION in hpa.inputs["file"]
    assert graph.waits_for("knative-serving-hpa", "knative-serving-core")
    assert graph.waits_for("isvc-team-a-iris", "knative-serving-hpa")
    without = evaluate(lab(models=[FLOWER], monitoring=False))
    assert not [r for r in without.registrations if r.name == "knative-serving-hpa"]


def test_grafana_on_its_node_port_with_the_password_only_in_a_secret(serverless):
    evaluation, _ = serverless
    values = evaluation.named("kube-prometheus-stack-chart").inputs["values"]
    grafana = values["grafana"]
    assert grafana["service"] == {"type": "NodePort", "nodePort": 30300}
    assert grafana["admin"]["existingSecret"] == "grafana-admin"
    assert values["prometheus"]["prometheusSpec"]["retention"] == "2d"
    secret = evaluation.named("grafana-admin-secret")
    assert secret.secret_paths == {"stringData"}
    assert secret.inputs["stringData"]["admin-password"] == PASSWORD  # the value the mocks saw
    for registration in evaluation.registrations:
        assert PASSWORD not in registration.plain, registration.name
    assert evaluation.outputs["grafanaUrl"] == "http://10.0.2.21:30300"


def test_grafana_password_output_is_secret():
    evaluation = evaluate(lab(models=[FLOWER]), secret_config=SECRET)
    password = evaluation.outputs["grafanaAdminPassword"]
    from pulumi.runtime.sync_await import _sync_await
    assert _sync_await(password.is_secret()) is True
    assert _sync_await(password.future()) == PASSWORD


def test_two_evaluations_are_identical():
    first = evaluate(lab(), secret_config=SECRET)
    second = evaluate(lab(), secret_config=SECRET)
    def record(evaluation):
        return sorted((r.type, r.name, json.dumps(r.inputs, sort_keys=True), r.plain,
                       tuple(sorted(r.dependencies)), tuple(sorted(r.secret_paths)))
                      for r in evaluation.registrations)
    assert record(first) == record(second)
    assert first.named("grafana-admin-secret").inputs["stringData"]["admin-password"] == PASSWORD


def test_raw_deployment_rps_gets_its_own_hpa_after_the_adapter_and_the_model():
    model = dict(IRIS, scaling={"minReplicas": 1, "maxReplicas": 4, "metric": "rps", "target": 25})
    evaluation = evaluate(lab(models=[model], mode="RawDeployment"), secret_config=SECRET)
    graph = Graph(evaluation)
    hpa = evaluation.named("hpa-team-a-iris-rps")
    assert hpa.type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
    assert hpa.inputs["metadata"] == {"name": "iris-predictor-rps", "namespace": "team-a"}
    spec = hpa.inputs["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": "iris-predictor"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 4)
    [metric] = spec["metrics"]
    assert metric["object"]["metric"]["name"] == mv.RPS_METRIC
    assert metric["object"]["target"] == {"type": "AverageValue", "averageValue": "25"}
    assert graph.waits_for("hpa-team-a-iris-rps", "prometheus-adapter-chart")
    assert graph.waits_for("hpa-team-a-iris-rps", "isvc-team-a-iris")
    isvc = evaluation.named("isvc-team-a-iris-rollout").inputs
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    assert "scaleMetric" not in isvc["spec"]["predictor"]
    rule = evaluation.named("prometheus-adapter-chart").inputs["values"]["rules"]["custom"][0]
    assert rule["name"]["as"] == mv.RPS_METRIC
    # No Knative in RawDeployment, so no Knative scrape configs either.
    names = {r.name for r in evaluation.by_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")}
    assert names == {"podmonitor-istio-ingressgateway", "podmonitor-kserve-model-servers"}


def test_monitoring_off_by_default_adds_nothing():
    evaluation = evaluate(stack_file_config("lab"))
    names = {r.name for r in evaluation.registrations}
    assert not names & set(MONITORING_RESOURCES)
    assert "grafanaUrl" not in evaluation.outputs and "grafanaAdminPassword" not in evaluation.outputs


def test_preview_with_unknown_kubeconfig_works():
    evaluation = evaluate(lab(), preview=True, secret_config=SECRET)
    assert evaluation.named("kube-prometheus-stack-chart")


def test_plan_of_a_stack_file_with_monitoring_and_an_encrypted_password(tmp_path):
    import yaml
    from components.plan.build import plan_stack
    config = {f"kserve-cluster:{k}": v for k, v in lab(models=[FLOWER]).items()}
    config["kserve-cluster:grafanaAdminPassword"] = {"secure": "v1:c2VjcmV0"}
    (tmp_path / "Pulumi.mon.yaml").write_text(yaml.safe_dump({"config": config}))
    plan = plan_stack("mon", tmp_path)
    summaries = {step.name: step.summary for step in plan.steps.values()}
    assert "kube-prometheus-stack" in summaries["kube-prometheus-stack-chart"]
    assert "PodMonitor monitoring/istio-ingressgateway" in summaries["podmonitor-istio-ingressgateway"]
