"""GPU metrics: dcgm-exporter on GPU nodes (its values, the real chart rendered, its
order in the program) and `scaling.metric: gpu` (prometheus-adapter's rule, the HPA).

The dcgm-exporter chart is not in ../shared/upstream yet: its chart test renders
NVIDIA/dcgm-exporter `deployment/` at the pinned tag from the upstream directory
(charts/dcgm-exporter-<version>/dcgm-exporter; KSERVE_CLUSTER_UPSTREAM=DIR for a
local copy) and is skipped, with the repository, tag and path, where it is absent.
"""
import json
import subprocess

import pytest
import yaml

from components import upstream, versions
from components.gpu.config import NODE_LABEL, NODE_TAINT
from components.monitoring import dcgm
from components.monitoring import values as mv
from components.monitoring.autoscaling import DEFAULT_GPU_TARGET, adapter_hpa_name, adapter_hpa_spec
from components.offline import charts
from components.offline.graph import Graph
from components.offline.program import evaluate
from components.offline.releases import declared_releases
from components.stack_config import parse_stack_config
from components.stack_file import stack_file_config
from upstream_needs import need, needs

SECRET = {"grafanaAdminPassword": "lab-grafana-Pa55word"}
GPU_TOLERATION = {"key": NODE_TAINT["key"], "operator": "Exists", "effect": NODE_TAINT["effect"]}
ADAPTER_FOUND = upstream.chart_source(upstream.ChartRef(
    "prometheus-adapter", versions.PROMETHEUS_ADAPTER_VERSION, versions.PROMETHEUS_COMMUNITY_CHART_REPO))
STACK_FOUND = upstream.chart_source(upstream.ChartRef(
    "kube-prometheus-stack", versions.KUBE_PROMETHEUS_STACK_VERSION,
    versions.PROMETHEUS_COMMUNITY_CHART_REPO))


def gpu_stack(mode="RawDeployment", monitoring=True, scaling=None):
    """The GPU example, with monitoring, and its GPU model scaling as given."""
    raw = stack_file_config("gpu-example")
    raw["serving"] = {"deploymentMode": mode}
    if monitoring:
        raw["monitoring"] = {"enabled": True}
    if scaling is not None:
        # the example's Triton model (it also has a GPU language model)
        [gpu_model] = [m for m in raw["models"] if m["name"] == "cifar10-gpu"]
        assert gpu_model["resources"]["gpu"]
        gpu_model["scaling"] = scaling
    return raw


@pytest.fixture(scope="module")
def scaled():
    evaluation = evaluate(gpu_stack(scaling={"minReplicas": 1, "maxReplicas": 2, "metric": "gpu",
                                             "target": 60}), secret_config=SECRET)
    return evaluation, Graph(evaluation)


# --- values (pure) ----------------------------------------------------------------------------

def test_the_exporter_runs_on_gpu_nodes_only_through_the_nvidia_runtime():
    values = dcgm.dcgm_exporter_values()
    key, value = NODE_LABEL
    assert values["nodeSelector"] == {key: value}
    # The chart's default list (the control plane's taint) is replaced, not merged.
    assert values["tolerations"] == [GPU_TOLERATION]
    assert values["runtimeClassName"] == "nvidia"


def test_the_exporter_is_scraped_by_the_stacks_prometheus_with_its_pod_labels():
    monitor = dcgm.dcgm_exporter_values()["serviceMonitor"]
    assert monitor["enabled"] is True
    assert monitor["additionalLabels"] == {"release": mv.RELEASE}
    assert monitor["interval"] == mv.SCRAPE_INTERVAL
    assert monitor["honorLabels"] is True  # pod/namespace stay the model pod's


def test_the_adapter_gets_the_gpu_rule_only_with_dcgm_exporter():
    assert [r["name"]["as"] for r in mv.adapter_values()["rules"]["custom"]] == [mv.RPS_METRIC]
    rules = mv.adapter_values(gpu=True)["rules"]["custom"]
    assert [r["name"]["as"] for r in rules] == [mv.RPS_METRIC, mv.GPU_METRIC]
    gpu = rules[1]
    assert gpu["seriesQuery"].startswith("DCGM_FI_DEV_GPU_UTIL{")
    assert gpu["resources"]["overrides"] == {"namespace": {"resource": "namespace"},
                                             "pod": {"resource": "pod"}}
    assert "<<.Series>>{<<.LabelMatchers>>}" in gpu["metricsQuery"]
    assert "by (<<.GroupBy>>)" in gpu["metricsQuery"]


def model_of(scaling):
    raw = gpu_stack(scaling=scaling)
    raw.update(SECRET)
    config = parse_stack_config(raw, has_secret_private_key=True,
                                secret_keys=frozenset(SECRET))
    return next(m for m in config.serving.models if m.gpu)


def test_the_gpu_hpa_averages_utilisation_over_the_models_pods():
    model = model_of({"minReplicas": 1, "maxReplicas": 3, "metric": "gpu", "target": 65})
    assert adapter_hpa_name(model) == "cifar10-gpu-predictor-gpu"
    spec = adapter_hpa_spec(model)
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                      "name": "cifar10-gpu-predictor"}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 3)
    assert spec["metrics"] == [{"type": "Pods", "pods": {
        "metric": {"name": mv.GPU_METRIC},
        "target": {"type": "AverageValue", "averageValue": "65"}}}]


def test_the_gpu_target_defaults_to_kserves_utilisation_default():
    model = model_of({"maxReplicas": 3, "metric": "gpu"})
    target = adapter_hpa_spec(model)["metrics"][0]["pods"]["target"]
    assert target["averageValue"] == str(DEFAULT_GPU_TARGET) == "80"


# --- the program (mock runtime) ---------------------------------------------------------------

def test_dcgm_exporter_after_monitoring_and_the_device_plugin(scaled):
    evaluation, graph = scaled
    chart = evaluation.named("dcgm-exporter-chart").inputs
    assert (chart["chart"], chart["version"], chart["repositoryOpts"]["repo"], chart["namespace"],
            chart["name"]) == (versions.DCGM_EXPORTER_CHART, versions.DCGM_EXPORTER_VERSION,
                               versions.DCGM_EXPORTER_CHART_REPO, mv.NAMESPACE, dcgm.RELEASE)
    assert chart["values"] == dcgm.dcgm_exporter_values()
    assert graph.waits_for("dcgm-exporter-chart", "kube-prometheus-stack-chart")
    assert graph.waits_for("dcgm-exporter-chart", "nvidia-device-plugin-chart")
    assert graph.waits_for("dcgm-exporter-chart", "nodes-ready")
    assert graph.waits_for("dcgm-exporter-chart", "gpu1-kubeadm-join")


def test_the_gpu_hpa_after_the_adapter_the_exporter_and_the_model(scaled):
    evaluation, graph = scaled
    hpa = evaluation.named("hpa-kserve-test-cifar10-gpu-gpu")
    assert hpa.type == "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
    assert hpa.inputs["metadata"] == {"name": "cifar10-gpu-predictor-gpu", "namespace": "kserve-test"}
    [metric] = hpa.inputs["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == mv.GPU_METRIC
    assert metric["pods"]["target"] == {"type": "AverageValue", "averageValue": "60"}
    for before in ("prometheus-adapter-chart", "dcgm-exporter-chart", "isvc-kserve-test-cifar10-gpu"):
        assert graph.waits_for("hpa-kserve-test-cifar10-gpu-gpu", before), before
    isvc = evaluation.named("isvc-kserve-test-cifar10-gpu-rollout").inputs
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "external"
    assert "scaleMetric" not in isvc["spec"]["predictor"]
    rules = evaluation.named("prometheus-adapter-chart").inputs["values"]["rules"]["custom"]
    assert [r["name"]["as"] for r in rules] == [mv.RPS_METRIC, mv.GPU_METRIC]
    # The dashboard has the GPU model's GPU panels.
    board = json.loads(evaluation.named("models-dashboard").inputs["data"]["kserve-cluster-models.json"])
    assert {"GPU utilisation", "GPU memory used", "GPU power"} <= {p["title"] for p in board["panels"]}


def test_no_dcgm_exporter_without_monitoring_or_without_a_gpu_node():
    without_monitoring = evaluate(gpu_stack(monitoring=False))
    names = {r.name for r in without_monitoring.registrations}
    assert "nvidia-device-plugin-chart" in names and "dcgm-exporter-chart" not in names
    lab = stack_file_config("lab")
    lab["monitoring"] = {"enabled": True}
    cpu_only = evaluate(lab, secret_config=SECRET)
    names = {r.name for r in cpu_only.registrations}
    assert "kube-prometheus-stack-chart" in names and "dcgm-exporter-chart" not in names
    rules = cpu_only.named("prometheus-adapter-chart").inputs["values"]["rules"]["custom"]
    assert [r["name"]["as"] for r in rules] == [mv.RPS_METRIC]


# --- the real chart ---------------------------------------------------------------------------

def dcgm_release():
    [release] = [r for r in declared_releases(["gpu"])
                 if r.chart.chart == versions.DCGM_EXPORTER_CHART]
    return release


@pytest.fixture(scope="module")
def rendered():
    release = dcgm_release()
    source, helm = need(upstream.chart_source(release.chart)), need(upstream.helm())
    return source, charts.render(helm, release, source, versions.KUBERNETES_VERSION)


def test_the_values_are_the_charts_own(rendered):
    source, _ = rendered
    assert charts.values_problems(dcgm_release().values, source) == []
    chart = yaml.safe_load((source / "Chart.yaml").read_text())
    assert chart["version"] == versions.DCGM_EXPORTER_VERSION
    misspelt = dict(dcgm.dcgm_exporter_values())
    misspelt["runtimeClass"] = misspelt.pop("runtimeClassName")
    [problem] = charts.values_problems(misspelt, source)
    assert problem.startswith("runtimeClass: not a value of chart dcgm-exporter")


def test_the_chart_renders_onto_gpu_nodes_only_with_the_pinned_image(rendered):
    _, objects = rendered
    [daemonset] = charts.find(objects, "DaemonSet")
    assert (daemonset["metadata"]["name"], daemonset["metadata"]["namespace"]) == (
        dcgm.FULLNAME, mv.NAMESPACE)
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"] == [GPU_TOLERATION]
    assert pod["runtimeClassName"] == "nvidia"
    [container] = pod["containers"]
    assert container["image"] == versions.DCGM_EXPORTER_IMAGE
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DCGM_EXPORTER_KUBERNETES"] == "true"  # the pod mapping: pod/namespace labels
    # ... read from the kubelet's pod-resources socket.
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "pod-gpu-resources"]
    assert mount["mountPath"] == "/var/lib/kubelet/pod-resources"
    assert {"name": "metrics", "containerPort": dcgm.METRICS_PORT} in container["ports"]


def test_the_service_monitor_reaches_the_exporter_with_its_labels_honoured(rendered):
    _, objects = rendered
    [monitor] = charts.find(objects, "ServiceMonitor")
    [service] = charts.find(objects, "Service")
    assert monitor["metadata"]["namespace"] == mv.NAMESPACE
    assert monitor["metadata"]["labels"]["release"] == mv.RELEASE
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["interval"], endpoint["honorLabels"]) == (
        "metrics", mv.SCRAPE_INTERVAL, True)
    [port] = service["spec"]["ports"]
    assert (port["name"], port["port"]) == ("metrics", dcgm.METRICS_PORT)


def test_the_default_counters_hold_the_dashboards_metrics(rendered):
    _, objects = rendered
    [counters] = [c for c in charts.find(objects, "ConfigMap")
                  if "metrics" in (c.get("data") or {})]
    fields = {line.split(",")[0].strip() for line in counters["data"]["metrics"].splitlines()
              if line.strip() and not line.strip().startswith("#")}
    assert {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_POWER_USAGE"} <= fields


@needs(STACK_FOUND)
def test_the_service_monitor_validates_against_the_stacks_crd(rendered):
    _, objects = rendered
    stack = STACK_FOUND.path
    crds = charts.load_yaml_documents(stack / "charts" / "crds" / "crds" / "crd-servicemonitors.yaml")
    check = charts.custom_resource_check(charts.find(objects, "ServiceMonitor"),
                                         charts.crd_validators(crds))
    assert check.validated and not check.errors and not check.unchecked, check


def test_a_missing_chart_source_is_skipped_naming_repository_tag_and_path(tmp_path, monkeypatch):
    monkeypatch.setenv(upstream.ENV, str(tmp_path))
    (tmp_path / "charts").mkdir()
    found = upstream.chart_source(dcgm_release().chart)
    assert not found and not found.expected
    assert ("repository github.com/NVIDIA/dcgm-exporter, tag "
            f"{versions.DCGM_EXPORTER_TAG}, path deployment") in found.reason
    assert f"charts/dcgm-exporter-{versions.DCGM_EXPORTER_VERSION}/dcgm-exporter" in found.reason


# --- prometheus-adapter's GPU rule against its chart ------------------------------------------

@needs(ADAPTER_FOUND)
def test_the_adapter_values_with_the_gpu_rule_are_the_charts_own():
    assert charts.values_problems(mv.adapter_values(gpu=True), ADAPTER_FOUND.path) == []


@needs(ADAPTER_FOUND)
def test_the_adapter_renders_the_gpu_rule_into_its_config(tmp_path):
    helm = need(upstream.helm())
    values_file = tmp_path / "values.json"
    values_file.write_text(json.dumps(mv.adapter_values(gpu=True)))
    done = subprocess.run([str(helm), "template", mv.ADAPTER_RELEASE, str(ADAPTER_FOUND.path),
                           "-n", mv.NAMESPACE, "--kube-version", versions.KUBERNETES_VERSION,
                           "-f", str(values_file)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [config] = [d for d in charts.parse_documents(done.stdout) if d["kind"] == "ConfigMap"]
    rules = yaml.safe_load(config["data"]["config.yaml"])["rules"]
    [gpu] = [r for r in rules if r["name"]["as"] == mv.GPU_METRIC]
    assert gpu == mv.gpu_utilization_rule()
