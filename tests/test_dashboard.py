"""The Models dashboard: valid Grafana JSON, a row per model, and every query's
metrics in the list of exported metrics with their upstream source."""
import json
import re

import pytest

from components.monitoring import dashboard as d
from components.monitoring.metrics import EXPORTED_METRICS, metric_names, unknown_metrics
from components.monitoring.values import adapter_queries, adapter_values
from components.serving.config import Model
from components.stack_config import parse_stack_config

NODES = [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}]
MODELS = [
    {"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
     "storageUri": "gs://kfserving-examples/models/tensorflow/flowers",
     "canary": {"storageUri": "gs://kfserving-examples/models/tensorflow/flowers-2", "trafficPercent": 10},
     "scaling": {"minReplicas": 0, "maxReplicas": 3, "metric": "concurrency", "target": 4}},
    {"name": "iris", "namespace": "team-a", "format": "sklearn",
     "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
     "scaling": {"metric": "rps", "target": 20}},
    {"name": "cpu-bound", "namespace": "team-a", "format": "xgboost", "storageUri": "gs://a/b",
     "scaling": {"metric": "cpu", "target": 60, "maxReplicas": 4}},
]


def config(mode="Serverless", models=MODELS):
    return parse_stack_config({"nodes": NODES, "serving": {"deploymentMode": mode}, "models": models,
                               "monitoring": {"enabled": True}, "grafanaAdminPassword": "long-enough"},
                              has_secret_private_key=True,
                              secret_keys=frozenset({"grafanaAdminPassword"})).serving


@pytest.fixture(scope="module")
def board():
    return d.models_dashboard(config())


def queries(board):
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def test_grafana_dashboard_shape(board):
    assert (board["uid"], board["title"]) == ("kserve-cluster-models", "Models")
    assert isinstance(board["schemaVersion"], int)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"} and grid["x"] + grid["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["type"] == "timeseries" and panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"] and re.fullmatch(r"[A-Z]", target["refId"])
    json.loads(d.dashboard_json(config()))  # serialisable, as the ConfigMap carries it


def test_panels_do_not_overlap(board):
    cells = set()
    for panel in board["panels"]:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))


def test_one_row_per_model_with_the_required_panels(board):
    rows = [p for p in board["panels"] if p["type"] == "row"]
    assert [r["title"] for r in rows] == ["kserve-test/tf-flower", "team-a/iris", "team-a/cpu-bound"]
    starts = [board["panels"].index(r) for r in rows] + [len(board["panels"])]
    per_model = {rows[i]["title"]: [p["title"] for p in board["panels"][starts[i] + 1:starts[i + 1]]]
                 for i in range(len(rows))}
    for titles in per_model.values():
        assert titles[:4] == ["Requests/s", "Error rate", "Latency", "Replicas"]
    assert "Traffic share per revision" in per_model["kserve-test/tf-flower"]
    assert "Traffic share per revision" not in per_model["team-a/iris"]  # no canary
    assert "Autoscaler input (rps per pod)" in per_model["team-a/iris"]
    assert "Model server predict p95" in per_model["team-a/iris"]        # sklearn: Python server
    assert "Model server predict p95" not in per_model["kserve-test/tf-flower"]


def test_latency_has_p50_p95_p99_and_errors_are_5xx(board):
    latency = next(p for p in board["panels"] if p["title"] == "Latency")
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p95", "p99"]
    assert "histogram_quantile(0.99," in latency["targets"][2]["expr"]
    errors = next(p for p in board["panels"] if p["title"] == "Error rate")["targets"][0]["expr"]
    assert 'response_code=~"5.."' in errors and 'destination_service_namespace="kserve-test"' in errors


def test_desired_replicas_come_from_whoever_scales_the_model(board):
    replicas = [p for p in board["panels"] if p["title"] == "Replicas"]
    desired = [p["targets"][0]["expr"] for p in replicas]
    assert desired[0].startswith("sum(autoscaler_desired_pods")            # KPA
    assert desired[1].startswith("sum(autoscaler_desired_pods")            # rps in Serverless: KPA
    assert "kube_horizontalpodautoscaler_status_desired_replicas" in desired[2]  # cpu: HPA class
    raw = d.models_dashboard(config("RawDeployment", [dict(MODELS[1], scaling={
        "metric": "rps", "target": 20, "maxReplicas": 3})]))
    [raw_replicas] = [p for p in raw["panels"] if p["title"] == "Replicas"]
    assert "-rps" in raw_replicas["targets"][0]["expr"]


def test_every_query_names_only_exported_metrics_with_a_source(board):
    named = set()
    for expr in queries(board) + queries(d.models_dashboard(config("RawDeployment", [
            dict(m, scaling={"metric": "cpu", "maxReplicas": 3}) for m in MODELS[1:]]))):
        assert metric_names(expr), expr
        assert not unknown_metrics(expr), expr
        named |= metric_names(expr)
    for expr in adapter_queries(adapter_values(gpu=True)):
        assert not unknown_metrics(expr), expr
    for metric in named:
        source = EXPORTED_METRICS[metric]
        assert source.repo and source.tag and source.path and source.component


def test_the_builder_refuses_a_metric_nobody_exports(monkeypatch):
    monkeypatch.setattr(d, "actual_replicas", lambda model: "sum(made_up_replicas_total)")
    with pytest.raises(ValueError, match="made_up_replicas_total"):
        d.models_dashboard(config())


@pytest.mark.parametrize("expr,names", [
    ('sum(rate(a_total{x="b",y=~"c(-[0-9]+)?"}[1m]))', {"a_total"}),
    ("histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))", {"h_bucket"}),
    ("sum by (d) (rate(a[1m])) / ignoring(d) group_left sum(rate(b[1m]))", {"a", "b"}),
    ('avg(c{n="sum"}) + max(d_e:f)', {"c", "d_e:f"}),
])
def test_metric_names_parser(expr, names):
    assert metric_names(expr) == names


def test_model_without_scaling_uses_the_modes_default():
    bare = Model(name="m", namespace="ns", format="tensorflow", storage_uri="gs://a/b")
    assert d.desired_replicas(bare, "Serverless").startswith("sum(autoscaler_desired_pods")
    assert "kube_horizontalpodautoscaler" in d.desired_replicas(bare, "RawDeployment")


# --- GPU panels (dcgm-exporter) --------------------------------------------------------------

GPU_NODES = NODES + [{"name": "worker1", "address": "10.0.2.22", "role": "worker"},
                     {"name": "gpu1", "address": "10.0.2.31", "role": "worker", "gpu": "nvidia"}]
GPU_MODEL = {"name": "cifar10-gpu", "namespace": "kserve-test", "format": "triton",
             "storageUri": "gs://kfserving-examples/models/torchscript",
             "resources": {"cpu": "1", "memory": "4Gi", "gpu": 2},
             "scaling": {"metric": "gpu", "target": 70, "maxReplicas": 2}}


def gpu_board(mode="RawDeployment"):
    models = [GPU_MODEL, MODELS[2]] if mode == "RawDeployment" else [
        {k: v for k, v in GPU_MODEL.items() if k != "scaling"}, MODELS[2]]
    serving = parse_stack_config(
        {"nodes": GPU_NODES, "serving": {"deploymentMode": mode}, "models": models,
         "monitoring": {"enabled": True}, "grafanaAdminPassword": "long-enough"},
        has_secret_private_key=True, secret_keys=frozenset({"grafanaAdminPassword"})).serving
    return d.models_dashboard(serving)


def panels_of(board, row_title):
    rows = [p for p in board["panels"] if p["type"] == "row"]
    start = board["panels"].index(next(r for r in rows if r["title"] == row_title))
    following = board["panels"][start + 1:]
    end = next((i for i, p in enumerate(following) if p["type"] == "row"), len(following))
    return {p["title"]: p for p in following[:end]}


@pytest.mark.parametrize("mode", ["RawDeployment", "Serverless"])
def test_a_gpu_model_gets_utilisation_memory_and_power_per_pod(mode):
    board = gpu_board(mode)
    gpu = panels_of(board, "kserve-test/cifar10-gpu")
    exprs = {title: gpu[title]["targets"][0]["expr"] for title in
             ("GPU utilisation", "GPU memory used", "GPU power")}
    assert exprs["GPU utilisation"].startswith("avg by (pod) (DCGM_FI_DEV_GPU_UTIL{")
    assert exprs["GPU memory used"].startswith("sum by (pod) (DCGM_FI_DEV_FB_USED{")
    assert exprs["GPU power"].startswith("sum by (pod) (DCGM_FI_DEV_POWER_USAGE{")
    assert [gpu[t]["fieldConfig"]["defaults"]["unit"] for t in exprs] == ["percent", "mbytes", "watt"]
    for expr in exprs.values():
        # The pod that holds the GPU, as dcgm-exporter labels it (its ServiceMonitor honours
        # the exporter's own pod/namespace labels).
        assert 'namespace="kserve-test"' in expr and "exported_" not in expr
        assert all(gpu[t]["targets"][0]["legendFormat"] == "{{pod}}" for t in exprs)
    # The CPU model has none.
    assert not [t for t in panels_of(board, "team-a/cpu-bound") if t.startswith("GPU")]


@pytest.mark.parametrize("pod,matches", [
    ("cifar10-gpu-predictor-7c9f5d6b8-x2k4q", True),                     # RawDeployment
    ("cifar10-gpu-predictor-00001-deployment-5d8f7c9b6-abcde", True),   # Serverless revision
    ("cifar10-gpu-predictor-00002-deployment-6f5d4c3b2-zzzzz", True),   # its canary
    ("cifar10-gpu-other-predictor-7c9f5d6b8-x2k4q", False),
    ("other-cifar10-gpu-predictor-7c9f5d6b8-x2k4q", False),
    ("dcgm-exporter-x7k2p", False),                                     # a GPU no pod holds
])
def test_the_gpu_panels_match_the_models_predictor_pods_only(pod, matches):
    model = parse_stack_config(
        {"nodes": GPU_NODES, "models": [{k: v for k, v in GPU_MODEL.items() if k != "scaling"}],
         "monitoring": {"enabled": True}, "grafanaAdminPassword": "long-enough"},
        has_secret_private_key=True, secret_keys=frozenset({"grafanaAdminPassword"})).serving.models[0]
    pattern = re.search(r'pod=~"([^"]+)"', d.pod_selector(model)).group(1)
    assert bool(re.fullmatch(pattern, pod)) is matches  # Prometheus anchors =~ at both ends


def test_gpu_metrics_name_dcgm_exporter_at_the_pinned_tag():
    from components import versions
    for name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_POWER_USAGE"):
        source = EXPORTED_METRICS[name]
        assert (source.repo, source.tag, source.path) == (
            "NVIDIA/dcgm-exporter", versions.DCGM_EXPORTER_TAG, "etc/default-counters.csv")
    for expr in queries(gpu_board()):
        assert not unknown_metrics(expr), expr


def test_replicas_of_a_gpu_scaled_model_come_from_our_gpu_hpa():
    replicas = panels_of(gpu_board(), "kserve-test/cifar10-gpu")["Replicas"]
    expr = replicas["targets"][0]["expr"]
    assert 'horizontalpodautoscaler=~"cifar10-gpu-predictor(-[0-9]+|-gpu|-rps)?"' in expr
    assert "GPU utilisation HPA" in replicas["description"]
