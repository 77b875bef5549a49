"""The monitoring charts' values against the chart sources at the pinned tags.

Reads the sources from the upstream directory (components/upstream.py):
  kube-prometheus-stack-<pin>/kube-prometheus-stack, with its dependencies in
  charts/ (grafana, kube-state-metrics, prometheus-node-exporter,
  prometheus-windows-exporter; crds is in the chart already), and
  prometheus-adapter-<pin>/prometheus-adapter.
Skipped with the reason where they are absent. Every key path we pass must be
the chart's (or its subchart's): in its values.yaml, or read by its templates
(components/offline/charts.py); then `helm template` renders our values and the
result is checked; our PodMonitors validate against the chart's CRD schema.
"""
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from components import upstream, versions
from components.monitoring import values as mv
from components.monitoring.config import MonitoringConfig
from components.monitoring.scrape import pod_monitors
from components.offline import charts
from components.stack_config import parse_stack_config
from upstream_needs import needs

ROOT = Path(__file__).resolve().parents[1]
STACK_FOUND = upstream.chart_source(upstream.ChartRef(
    "kube-prometheus-stack", versions.KUBE_PROMETHEUS_STACK_VERSION,
    versions.PROMETHEUS_COMMUNITY_CHART_REPO))
ADAPTER_FOUND = upstream.chart_source(upstream.ChartRef(
    "prometheus-adapter", versions.PROMETHEUS_ADAPTER_VERSION, versions.PROMETHEUS_COMMUNITY_CHART_REPO))
STACK = STACK_FOUND.path or Path("/nonexistent")
ADAPTER = ADAPTER_FOUND.path or Path("/nonexistent")
HELM_FOUND = upstream.helm()
HELM = str(HELM_FOUND.path or "/nonexistent/helm")

needs_stack = needs(STACK_FOUND)
needs_adapter = needs(ADAPTER_FOUND)
needs_helm = needs(HELM_FOUND)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


@needs_stack
def test_stack_values_are_the_charts_and_its_subcharts():
    assert charts.values_problems(mv.stack_values(MonitoringConfig(enabled=True)), STACK) == []
    assert load(STACK / "Chart.yaml")["version"] == versions.KUBE_PROMETHEUS_STACK_VERSION


@needs_stack
@pytest.mark.parametrize("misspelt, guess", [
    (("prometheus", "prometheusSpec", "retension"), "prometheus.prometheusSpec.retention"),
    (("grafana", "sidecar", "dashboard"), "grafana.sidecar.dashboards"),
    (("grafana", "servce"), "grafana.service"),
    (("kube-state-metrics", "resorces"), "kube-state-metrics.resources"),
])
def test_a_misspelt_stack_key_fails_even_in_a_subchart(misspelt, guess):
    values = mv.stack_values(MonitoringConfig(enabled=True))
    node = values
    for key in misspelt[:-1]:
        node = node.setdefault(key, {})
    node[misspelt[-1]] = {"enabled": True} if misspelt[-1] == "dashboard" else "x"
    [problem] = charts.values_problems(values, STACK)
    assert problem.startswith(".".join(misspelt) + ": not a value of chart kube-prometheus-stack")
    assert problem.endswith(f"did you mean {guess}?")


@needs_stack
def test_grafana_node_port_counts_because_the_subchart_template_reads_it():
    # Only a comment in grafana's values.yaml; its templates/service.yaml reads it.
    assert "nodePort" not in load(STACK / "charts" / "grafana" / "values.yaml")["service"]
    assert ".Values.service.nodePort" in \
        (STACK / "charts" / "grafana" / "templates" / "service.yaml").read_text()
    values = {"grafana": {"service": {"type": "NodePort", "nodePort": 30333}}}
    assert charts.values_problems(values, STACK) == []


@needs_adapter
def test_adapter_values_are_the_charts_own():
    # rules.resource is only a comment in values.yaml; the templates read it.
    assert "resource" not in load(ADAPTER / "values.yaml")["rules"]
    assert charts.values_problems(mv.adapter_values(), ADAPTER) == []
    assert load(ADAPTER / "Chart.yaml")["version"] == versions.PROMETHEUS_ADAPTER_VERSION
    misspelt = mv.adapter_values()
    misspelt["rules"]["resorce"] = misspelt["rules"].pop("resource")
    assert charts.values_problems(misspelt, ADAPTER) == [
        "rules.resorce: not a value of chart prometheus-adapter (not in its values.yaml); "
        "did you mean rules.resource?"]


def render(chart: Path, release: str, values: dict, tmp_path: Path) -> list[dict]:
    values_file = tmp_path / f"{release}.json"
    values_file.write_text(json.dumps(values))
    done = subprocess.run([HELM, "template", release, str(chart), "-n", mv.NAMESPACE,
                           "--kube-version", versions.KUBERNETES_VERSION, "-f", str(values_file)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return charts.parse_documents(done.stdout)


@needs_stack
@needs_helm
def test_stack_renders_with_grafana_on_the_node_port_and_no_password_in_values(tmp_path):
    docs = render(STACK, mv.RELEASE, mv.stack_values(MonitoringConfig(True, 30333, "2d")), tmp_path)
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
    grafana = services[f"{mv.RELEASE}-grafana"]["spec"]
    assert grafana["type"] == "NodePort" and grafana["ports"][0]["nodePort"] == 30333
    assert mv.PROMETHEUS_SERVICE in services
    assert services[mv.PROMETHEUS_SERVICE]["spec"]["ports"][0]["port"] == mv.PROMETHEUS_PORT
    [prometheus] = by_kind["Prometheus"]
    assert prometheus["spec"]["retention"] == "2d"
    assert prometheus["spec"]["podMonitorSelector"] == {}  # every PodMonitor, ours included
    assert "Alertmanager" not in by_kind
    text = yaml.safe_dump_all(docs)
    assert "GF_SECURITY_ADMIN_PASSWORD" in text and mv.GRAFANA_ADMIN_SECRET in text
    assert not [d for d in by_kind.get("Secret", []) if "admin-password" in (d.get("data") or {})]
    sidecar_label = load(STACK / "values.yaml")["grafana"]["sidecar"]["dashboards"]
    assert (sidecar_label["label"], sidecar_label["labelValue"]) == mv.DASHBOARD_LABEL


@needs_adapter
@needs_helm
def test_adapter_renders_both_metrics_apis_and_our_rule(tmp_path):
    docs = render(ADAPTER, mv.ADAPTER_RELEASE, mv.adapter_values(), tmp_path)
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "APIService"}
    assert services == {"v1beta1.custom.metrics.k8s.io", "v1beta1.metrics.k8s.io"}
    [config] = [d for d in docs if d["kind"] == "ConfigMap"]
    rules = yaml.safe_load(config["data"]["config.yaml"])
    assert rules["rules"][0]["name"]["as"] == mv.RPS_METRIC and "resourceRules" in rules
    [deployment] = [d for d in docs if d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--prometheus-url=http://{mv.PROMETHEUS_SERVICE}.{mv.NAMESPACE}.svc:{mv.PROMETHEUS_PORT}" in args


@needs_stack
def test_pod_monitors_validate_against_the_charts_crd():
    crd = load(STACK / "charts" / "crds" / "crds" / "crd-podmonitors.yaml")
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    serving = parse_stack_config({
        "nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}],
        "models": [{"name": "iris", "namespace": "team-a", "format": "sklearn", "storageUri": "gs://a/b"},
                   {"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
                    "storageUri": "gs://a/c"}]}, has_secret_private_key=True).serving
    monitors = pod_monitors(serving)
    assert len(monitors) == 4
    for name, spec in monitors.items():
        jsonschema.validate(spec, schema)
