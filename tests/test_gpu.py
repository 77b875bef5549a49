"""GPU nodes and GPU models: config rules and refusals, the node steps' inputs, the
join's labels and taint, preflight's GPU check, and the order under the mock runtime."""
import copy
import json

import jsonschema
import pytest
import yaml

from components import upstream, versions
from components.cluster.kubeadm_config import JoinCredentials, render_join_config
from components.cluster.node_scripts import render_command
from components.gpu.config import GpuConfig
from components.gpu.device_plugin import device_plugin_values, runtime_class_scheduling
from components.gpu.node import driver_inputs, toolkit_inputs
from components.offline.graph import Graph
from components.offline.program import (
    HEALTHY_GPU_FACTS, HEALTHY_NODE_FACTS, ClusterMocks, evaluate)
from components.preflight.checks import CHECKS, FAIL, PASS, WARN, evaluate as preflight, parse_facts
from components.preflight.gate import facts_inputs
from components.serving.models import inference_service_spec
from components.stack_config import ConfigError, Node, parse_stack_config
from components.stack_file import stack_file_config
from upstream_needs import need

GPU_NODE = {"name": "gpu1", "address": "10.0.2.31", "role": "worker", "gpu": "nvidia"}
BASE = {
    "nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"},
              {"name": "worker1", "address": "10.0.2.22", "role": "worker"}, GPU_NODE],
    "ssh": {"user": "ubuntu"},
    "gpu": {"driver": "580-server"},
}
GPU_MODEL = {"name": "cifar10-gpu", "namespace": "kserve-test", "format": "triton",
             "storageUri": "gs://kfserving-examples/models/torchscript",
             "resources": {"cpu": "1", "memory": "4Gi", "gpu": 1}}


def config(**changes):
    raw = copy.deepcopy(BASE)
    raw.update(changes)
    return raw


def problems(raw):
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, has_secret_private_key=True)
    return caught.value.problems


def parsed(raw):
    return parse_stack_config(raw, has_secret_private_key=True)


# --- config ---------------------------------------------------------------------------

def test_a_gpu_node_and_a_gpu_model_are_accepted():
    stack = parsed(config(models=[GPU_MODEL]))
    assert stack.gpu == GpuConfig(driver="580-server", nodes=("gpu1",))
    assert [n.gpu for n in stack.nodes] == [None, None, "nvidia"]
    assert stack.serving.models[0].gpu == 1
    assert stack.gpu.driver_packages == ("nvidia-driver-580-server", "nvidia-utils-580-server")


def test_preinstalled_driver_installs_no_packages():
    stack = parsed(config(gpu={"driver": "preinstalled"}))
    assert not stack.gpu.installs_driver and stack.gpu.driver_packages == ()


def test_every_accepted_branch_is_a_server_branch_from_the_pinned_list():
    for branch in versions.NVIDIA_DRIVER_BRANCHES:
        assert branch.endswith("-server")
        assert parsed(config(gpu={"driver": branch})).gpu.driver == branch


def test_amd_is_refused_as_not_supported():
    nodes = copy.deepcopy(BASE["nodes"])
    nodes[2]["gpu"] = "amd"
    [problem] = problems(config(nodes=nodes))
    assert problem.startswith("kserve-cluster:nodes[2] (gpu1).gpu = 'amd': AMD GPUs (ROCm) are not "
                              "supported")
    assert "Fix: remove `gpu` from this node" in problem


def test_an_unknown_vendor_gets_the_close_match():
    nodes = copy.deepcopy(BASE["nodes"])
    nodes[2]["gpu"] = "nvdia"
    [problem] = problems(config(nodes=nodes))
    assert "did you mean 'nvidia'?" in problem and "Fix: write gpu: nvidia" in problem


@pytest.mark.parametrize("driver,hint", [("550-server", None), ("470-server", None),
                                         ("580", "did you mean '580-server'?"), ("latest", None)])
def test_a_branch_ubuntu_2204_does_not_ship_is_refused(driver, hint):
    [problem] = problems(config(gpu={"driver": driver}))
    assert problem.startswith(f"kserve-cluster:gpu.driver = {driver!r}: not an NVIDIA server driver "
                              "branch that Ubuntu 22.04 ships")
    assert versions.NVIDIA_DRIVER_BRANCHES_PAGE in problem
    assert "Fix: use one of 535-server" in problem and "'preinstalled'" in problem
    if hint:
        assert hint in problem


def test_unknown_gpu_key_is_refused():
    [problem] = problems(config(gpu={"driver": "580-server", "drivers": "x"}))
    assert "gpu.drivers" in problem and "did you mean 'driver'?" in problem


def test_a_gpu_model_without_a_gpu_node_is_refused():
    nodes = [n for n in BASE["nodes"] if "gpu" not in n]
    raw = config(nodes=nodes, models=[GPU_MODEL])
    del raw["gpu"]
    [problem] = problems(raw)
    assert problem.startswith("kserve-cluster:models[0] (cifar10-gpu).resources.gpu = 1: the model "
                              "asks for GPUs, but no node has `gpu: nvidia`")


@pytest.mark.parametrize("value", [0.5, "0.5", "500m", 1.25])
def test_a_fractional_gpu_count_is_refused(value):
    model = copy.deepcopy(GPU_MODEL)
    model["resources"]["gpu"] = value
    [problem] = problems(config(models=[model]))
    assert f"resources.gpu = {value!r}: a fraction of a GPU" in problem
    assert "Fix: give a whole number of GPUs, e.g. 1." in problem


@pytest.mark.parametrize("value,words", [(0, "outside the range 1-16"), (17, "outside the range"),
                                         ("two", "not a number of GPUs"), (True, "not a number")])
def test_a_gpu_count_must_be_a_whole_number_from_one(value, words):
    model = copy.deepcopy(GPU_MODEL)
    model["resources"]["gpu"] = value
    [problem] = problems(config(models=[model]))
    assert words in problem


def test_a_gpu_on_the_control_plane_is_refused():
    nodes = copy.deepcopy(BASE["nodes"])
    nodes[0]["gpu"] = "nvidia"
    [problem] = problems(config(nodes=nodes))
    assert problem.startswith("kserve-cluster:nodes[0] (cp1).gpu = 'nvidia': a GPU on the control "
                              "plane is not supported")


def test_gpu_workers_only_leave_the_cluster_layers_nowhere_to_run():
    nodes = [BASE["nodes"][0], GPU_NODE]
    [problem] = problems(config(nodes=nodes))
    assert problem.startswith("kserve-cluster:nodes = ['gpu1']: every worker is a GPU node")
    assert "add a worker without `gpu`" in problem


def test_several_gpu_problems_are_reported_together():
    nodes = copy.deepcopy(BASE["nodes"])
    nodes[1]["gpu"] = "amd"
    model = copy.deepcopy(GPU_MODEL)
    model["resources"]["gpu"] = 0.5
    found = problems(config(nodes=nodes, gpu={"driver": "550-server"}, models=[model]))
    assert len(found) == 3
    assert [p.split(" = ")[0] for p in found] == [
        "kserve-cluster:nodes[1] (worker1).gpu", "kserve-cluster:models[0] (cifar10-gpu).resources.gpu",
        "kserve-cluster:gpu.driver"]


def test_a_gpu_section_with_no_gpu_node_is_a_warning():
    nodes = [n for n in BASE["nodes"] if "gpu" not in n]
    stack = parsed(config(nodes=nodes))
    assert not stack.gpu.enabled
    assert any(w.startswith("kserve-cluster:gpu = ") and "no node has `gpu: nvidia`" in w
               for w in stack.warnings)


def test_a_model_over_its_projects_gpu_quota_is_refused():
    model = dict(GPU_MODEL, namespace="team-a", resources={"gpu": 2}, public=True)
    [problem] = problems(config(models=[model], projects=[{"name": "team-a", "quota": {"gpu": 1}}]))
    assert problem.startswith("kserve-cluster:models[0] (cifar10-gpu).resources.gpu = 2: more than "
                              "the whole GPU quota of project team-a (1, requests.nvidia.com/gpu)")


# --- node steps and join ---------------------------------------------------------------

def test_node_step_inputs_are_the_pins():
    node = Node("gpu1", "10.0.2.31", "worker", gpu="nvidia")
    assert driver_inputs(node, GpuConfig(driver="570-server")) == {
        "DRIVER_BRANCH": "570-server", "NODE_NAME": "gpu1"}
    assert toolkit_inputs() == {
        "TOOLKIT_APT_REPO": "https://nvidia.github.io/libnvidia-container/stable/deb/",
        "TOOLKIT_GPGKEY_URL": "https://nvidia.github.io/libnvidia-container/gpgkey",
        "TOOLKIT_VERSION": versions.NVIDIA_CONTAINER_TOOLKIT_VERSION,
        "TOOLKIT_PACKAGES": "nvidia-container-toolkit nvidia-container-toolkit-base "
                            "libnvidia-container-tools libnvidia-container1"}
    for script, env in (("gpu-driver.sh", driver_inputs(node, GpuConfig())),
                        ("gpu-toolkit.sh", toolkit_inputs()), ("gpu-runtime.sh", {})):
        assert render_command(script, env).startswith("sudo -n env ")


def test_driver_script_never_reboots_and_says_how_to():
    text = render_command("gpu-driver.sh", {"DRIVER_BRANCH": "580-server", "NODE_NAME": "gpu1"})
    assert "reboot\n" not in text and "shutdown" not in text and "systemctl reboot" not in text
    assert "kubectl drain" in text and "sudo reboot" in text and "kubectl uncordon" in text


def test_runtime_script_checks_the_systemd_cgroup_of_the_nvidia_runtime():
    text = render_command("gpu-runtime.sh", {})
    assert "nvidia-ctk runtime configure --runtime=containerd" in text
    assert "SystemdCgroup" in text and "systemctl restart containerd" in text


def test_a_gpu_worker_joins_labelled_and_tainted_and_others_do_not():
    creds = JoinCredentials("10.0.2.21:6443", "abcdef.0123456789abcdef", "sha256:" + "ab" * 32)
    gpu = yaml.safe_load(render_join_config(Node("gpu1", "10.0.2.31", "worker", gpu="nvidia"), creds))
    registration = gpu["nodeRegistration"]
    assert {"name": "node-labels", "value": "nvidia.com/gpu.present=true"} in registration["kubeletExtraArgs"]
    assert registration["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    plain = yaml.safe_load(render_join_config(Node("worker1", "10.0.2.22", "worker"), creds))
    assert "taints" not in plain["nodeRegistration"]
    assert [a["name"] for a in plain["nodeRegistration"]["kubeletExtraArgs"]] == ["node-ip"]


# --- preflight -------------------------------------------------------------------------

GPU1 = Node("gpu1", "10.0.2.31", "worker", gpu="nvidia")
CP = Node("cp1", "10.0.2.21", "control-plane")


def gpu_facts(**changes):
    facts = parse_facts(HEALTHY_GPU_FACTS + HEALTHY_NODE_FACTS)
    facts.update(hostname="gpu1", product_uuid="uuid-gpu1", macs="02:00:00:00:00:31")
    facts.update(changes)
    return "\n".join(f"{k}={v}" for k, v in facts.items())


def cp_facts():
    facts = parse_facts(HEALTHY_NODE_FACTS)
    facts.update(hostname="cp1", product_uuid="uuid-cp1", macs="02:00:00:00:00:21")
    return "\n".join(f"{k}={v}" for k, v in facts.items())


def gpu_result(gpu=GpuConfig(driver="580-server", nodes=("gpu1",)), model_gpus=None, **changes):
    report = preflight([CP, GPU1], {"cp1": cp_facts(), "gpu1": gpu_facts(**changes)},
                       gpu=gpu, model_gpus=model_gpus)
    by_node = {n.node: n.results for n in report.nodes}
    assert "gpu" not in by_node["cp1"]  # a node without `gpu` has no GPU check
    return report, by_node["gpu1"]["gpu"]


def test_gpu_facts_are_asked_of_gpu_nodes_only():
    assert facts_inputs(GPU1, 31903)["GPU"] == "nvidia"
    assert "GPU" not in facts_inputs(CP, 31903)
    assert "gpu" in CHECKS and CHECKS.index("gpu") < CHECKS.index("runc")


def test_a_healthy_gpu_node_passes_with_its_count():
    report, got = gpu_result(gpu_devices="2")
    assert got.status == PASS and got.detail == "2 GPU" and not report.failed


def test_a_gpu_node_with_no_nvidia_device_is_refused():
    report, got = gpu_result(gpu_devices="0")
    assert got.status == FAIL and report.failed
    assert "no NVIDIA GPU on this node (lspci -n shows no display controller of vendor 10de)" in got.message


@pytest.mark.parametrize("loaded,status", [("absent", FAIL), ("failed", FAIL), ("570.172.08", PASS)])
def test_preinstalled_driver_must_answer_nvidia_smi(loaded, status):
    _, got = gpu_result(gpu=GpuConfig(driver="preinstalled", nodes=("gpu1",)), nvidia_driver=loaded)
    assert got.status == status
    if status == FAIL:
        assert "gpu.driver is preinstalled, but nvidia-smi" in got.message
    else:
        assert got.detail == "1 GPU, driver 570.172.08"


@pytest.mark.parametrize("changes,words", [
    ({"secure_boot": "enabled"}, "Secure Boot is on"),
    ({"kernel_headers": "absent"}, "no kernel headers for the running kernel"),
    ({"nvidia_driver": "535.261.03"}, "driver 535.261.03 is loaded, and gpu.driver asks for 580-server"),
    ({"gpu_devices": "unknown"}, "lspci is missing"),
])
def test_gpu_warnings_say_what_to_do(changes, words):
    report, got = gpu_result(**changes)
    assert got.status == WARN and words in got.message and not report.failed


def test_secure_boot_warning_names_the_key_enrollment():
    _, got = gpu_result(secure_boot="enabled")
    assert "mokutil --import /var/lib/shim-signed/mok/MOK.der" in got.message


def test_too_little_disk_for_the_driver_is_refused():
    _, got = gpu_result(disk_free_mb="900")
    assert got.status == FAIL and "900 MB free on /" in got.message


def test_a_model_asking_for_more_gpus_than_the_largest_node_is_refused():
    report, got = gpu_result(gpu_devices="2", model_gpus={"kserve-test/big": 4, "kserve-test/ok": 2})
    assert got.status == FAIL and report.failed
    assert "model(s) kserve-test/big (4) ask for more GPUs than the largest GPU node has (2)" in got.message
    _, fits = gpu_result(gpu_devices="2", model_gpus={"kserve-test/ok": 2})
    assert fits.status == PASS


# --- the predictor ---------------------------------------------------------------------

def test_a_gpu_model_gets_the_resource_the_runtime_class_and_the_toleration():
    model = parsed(config(models=[GPU_MODEL])).serving.models[0]
    predictor = inference_service_spec(model, rollout=True)["predictor"]
    resources = predictor["model"]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"] == "1"
    assert predictor["runtimeClassName"] == "nvidia"
    assert predictor["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists",
                                         "effect": "NoSchedule"}]
    cpu_only = parsed(config(models=[dict(GPU_MODEL, resources={"cpu": "1"})])).serving.models[0]
    plain = inference_service_spec(cpu_only, rollout=True)["predictor"]
    assert "runtimeClassName" not in plain and "tolerations" not in plain
    assert "nvidia.com/gpu" not in plain["model"]["resources"]["limits"]


def test_the_gpu_predictor_validates_against_kserves_crd():
    crds = need(upstream.kserve_crds_dir())
    crd = yaml.safe_load((crds / "inferenceservices.yaml").read_text())
    [v1beta1] = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    predictor_schema = v1beta1["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["predictor"]
    assert {"runtimeClassName", "tolerations"} <= set(predictor_schema["properties"])
    model = parsed(config(models=[GPU_MODEL])).serving.models[0]
    spec = json.loads(json.dumps(inference_service_spec(model, rollout=True)))
    jsonschema.validate(spec["predictor"], predictor_schema)


def test_device_plugin_values_keep_it_on_gpu_nodes():
    values = device_plugin_values()
    assert values["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert values["runtimeClassName"] == "nvidia"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in values["tolerations"]
    assert runtime_class_scheduling()["nodeSelector"] == values["nodeSelector"]


# --- the program under the mock runtime ------------------------------------------------

@pytest.fixture(scope="module")
def gpu_example():
    evaluation = evaluate(stack_file_config("gpu-example"))
    return evaluation, Graph(evaluation)


def test_gpu_node_order_driver_toolkit_runtime_then_join(gpu_example):
    evaluation, graph = gpu_example
    chain = ["gpu1-prepare", "gpu1-gpu-driver", "gpu1-gpu-toolkit", "gpu1-gpu-runtime",
             "gpu1-kubeadm-join"]
    for earlier, later in zip(chain, chain[1:]):
        assert graph.waits_for(later, earlier), (later, earlier)
    # Other nodes have no GPU steps, and do not wait for gpu1's.
    assert not [r.name for r in evaluation.commands() if r.name.startswith(("worker1-gpu", "cp1-gpu"))]
    assert not graph.waits_for("worker1-kubeadm-join", "gpu1-gpu-runtime")
    driver = evaluation.named("gpu1-gpu-driver").inputs["create"]
    assert "DRIVER_BRANCH=580-server" in driver
    toolkit = evaluation.named("gpu1-gpu-toolkit").inputs["create"]
    assert f"TOOLKIT_VERSION={versions.NVIDIA_CONTAINER_TOOLKIT_VERSION}" in toolkit
    # prepare.sh rewrites containerd's config: the runtime step runs again after it.
    assert evaluation.named("gpu1-gpu-runtime").inputs["triggers"] == [
        evaluation.named("gpu1-prepare").inputs["create"]]


def with_driver_loaded(name, inputs):
    """Node answers as ClusterMocks gives them, a GPU node with driver 580.95.05 loaded."""
    return ClusterMocks.default_stdout(name, inputs).replace("nvidia_driver=absent",
                                                             "nvidia_driver=580.95.05")


def test_preinstalled_driver_has_no_driver_step():
    raw = stack_file_config("gpu-example")
    raw["gpu"] = {"driver": "preinstalled"}
    evaluation = evaluate(raw, mocks=ClusterMocks(False, with_driver_loaded))
    graph = Graph(evaluation)
    assert not [r for r in evaluation.commands() if r.name == "gpu1-gpu-driver"]
    assert graph.waits_for("gpu1-gpu-toolkit", "gpu1-prepare")
    assert graph.waits_for("gpu1-kubeadm-join", "gpu1-gpu-runtime")


def test_preinstalled_without_a_driver_stops_at_the_preflight_gate():
    raw = stack_file_config("gpu-example")
    raw["gpu"] = {"driver": "preinstalled"}
    with pytest.raises(Exception) as caught:
        evaluate(raw)
    assert "preflight failed; nothing was changed on any node" in str(caught.value)
    assert "gpu.driver is preinstalled, but nvidia-smi is not installed" in str(caught.value)


def test_device_plugin_after_every_node_is_ready_and_gpu_models_after_it(gpu_example):
    evaluation, graph = gpu_example
    chart = evaluation.named("nvidia-device-plugin-chart").inputs
    assert (chart["chart"], chart["version"], chart["repositoryOpts"]["repo"], chart["namespace"]) == (
        "nvidia-device-plugin", versions.NVIDIA_DEVICE_PLUGIN_VERSION,
        "https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin")
    assert chart["values"] == device_plugin_values()
    assert graph.waits_for("nvidia-device-plugin-chart", "nodes-ready")
    assert graph.waits_for("nvidia-device-plugin-chart", "runtimeclass-nvidia")
    runtime_class = evaluation.named("runtimeclass-nvidia").inputs
    assert (runtime_class["metadata"]["name"], runtime_class["handler"]) == ("nvidia", "nvidia")
    assert graph.waits_for("nodes-ready", "gpu1-kubeadm-join")
    for name in ("isvc-kserve-test-cifar10-gpu", "isvc-kserve-test-cifar10-gpu-rollout"):
        assert graph.waits_for(name, "nvidia-device-plugin-chart"), name
    # A CPU model does not wait for the GPU layer.
    assert not graph.waits_for("isvc-kserve-test-tf-flower", "nvidia-device-plugin-chart")
    spec = evaluation.named("isvc-kserve-test-cifar10-gpu").inputs["spec"]["predictor"]
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_gpu_preflight_facts_are_gathered_on_the_gpu_node(gpu_example):
    evaluation, _ = gpu_example
    assert "GPU=nvidia" in evaluation.named("gpu1-preflight").inputs["create"]
    assert "GPU=nvidia" not in evaluation.named("worker1-preflight").inputs["create"]


def test_a_stack_without_gpu_nodes_has_no_gpu_layer():
    evaluation = evaluate(stack_file_config("lab"))
    names = {r.name for r in evaluation.registrations}
    assert not {"nvidia-device-plugin-chart", "runtimeclass-nvidia"} & names
    assert not [n for n in names if "-gpu-" in n]


def test_the_offline_plan_of_the_gpu_example():
    from tests.test_plan import run_plan
    result = run_plan("gpu-example")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for step in ("gpu1-gpu-driver", "gpu1-gpu-toolkit", "gpu1-gpu-runtime", "nvidia-device-plugin",
                 "cifar10-gpu"):
        assert step in text, step
    assert "preflight" not in result.stderr.lower() or "WARN" not in result.stderr


def test_the_device_plugin_chart_renders_onto_gpu_nodes_only():
    from components.offline import charts
    from components.offline.releases import declared_releases
    [release] = [r for r in declared_releases(["gpu"])
                 if r.chart.chart == versions.NVIDIA_DEVICE_PLUGIN_CHART]
    source, helm = need(upstream.chart_source(release.chart)), need(upstream.helm())
    objects = charts.render(helm, release, source, versions.KUBERNETES_VERSION)
    daemonsets = [o for o in objects if o["kind"] == "DaemonSet"]
    # The plugin's own, and the MPS control daemon's (which only runs on nodes labelled for MPS).
    [daemonset] = [d for d in daemonsets if d["metadata"]["name"] == "nvidia-device-plugin"]
    for other in daemonsets:
        assert other["spec"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    pod = daemonset["spec"]["template"]["spec"]
    assert daemonset["metadata"]["namespace"] == "nvidia-device-plugin"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["runtimeClassName"] == "nvidia"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["containers"][0]["image"].endswith(f":v{versions.NVIDIA_DEVICE_PLUGIN_VERSION}")


def test_a_missing_device_plugin_source_is_skipped_naming_repository_tag_and_path(tmp_path, monkeypatch):
    from components.upstream import ChartRef
    monkeypatch.setenv(upstream.ENV, str(tmp_path))
    (tmp_path / "charts").mkdir()
    found = upstream.chart_source(ChartRef(versions.NVIDIA_DEVICE_PLUGIN_CHART,
                                           versions.NVIDIA_DEVICE_PLUGIN_VERSION,
                                           versions.NVIDIA_DEVICE_PLUGIN_CHART_REPO))
    assert not found
    assert ("repository github.com/NVIDIA/k8s-device-plugin, tag v0.20.0, path "
            "deployments/helm/nvidia-device-plugin") in found.reason
