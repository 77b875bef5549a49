"""The single-node dev stack passes the program checks the lab stack passes.

The lab's test functions are imported and run again here with this module's
fixtures (`stack`, `lab`) pointing at stacks/Pulumi.dev.yaml. A test that needs
workers is still meaningful with none (its loops are empty), so the checks
specific to a zero-worker cluster are asserted below as well.
"""
import inspect

import pulumi
import pytest
import yaml

import test_program_cluster
import test_program_serving
from components.offline.graph import Graph
from components.offline.program import evaluate
from components.stack_file import stack_file_config

DEV = "dev"


@pytest.fixture(scope="module")
def dev_config():
    return stack_file_config(DEV)


@pytest.fixture(scope="module")
def stack(dev_config):
    evaluation = evaluate(dev_config)
    return dev_config, evaluation, Graph(evaluation)


@pytest.fixture(scope="module")
def lab(stack):
    """test_program_serving's fixture name; here it holds the dev stack."""
    _, evaluation, graph = stack
    return evaluation, graph


def _reused(module, fixture):
    return {name: function for name, function in vars(module).items()
            if name.startswith("test_") and callable(function)
            and list(inspect.signature(function).parameters) == [fixture]}


# These two name the lab's control plane (cp1, 10.0.2.21) literally; their dev
# versions are below (test_dev_kubernetes_objects_..., test_dev_smoke_prediction_...).
LAB_LITERALS = {"test_kubernetes_objects_go_with_the_cluster", "test_smoke_prediction_and_outputs"}
REUSED = {name: function for name, function in
          {**_reused(test_program_cluster, "stack"), **_reused(test_program_serving, "lab")}.items()
          if name not in LAB_LITERALS}
globals().update(REUSED)


def test_the_lab_checks_are_reused():
    # If the lab's tests change their fixture names, this module would silently test nothing.
    assert len(_reused(test_program_cluster, "stack")) >= 10
    assert len(_reused(test_program_serving, "lab")) >= 10


def test_dev_is_one_control_plane_and_no_worker(dev_config):
    roles = [node["role"] for node in dev_config["nodes"]]
    assert roles == ["control-plane"]


def test_control_plane_is_left_schedulable(stack):
    config, evaluation, _ = stack
    cp = config["nodes"][0]["name"]
    documents = list(yaml.safe_load_all(evaluation.named(f"{cp}-kubeadm-init").inputs["stdin"]))
    init = next(d for d in documents if d["kind"] == "InitConfiguration")
    # An empty list removes kubeadm's default node-role.kubernetes.io/control-plane taint.
    assert init["nodeRegistration"]["taints"] == []
    assert init["nodeRegistration"]["name"] == cp


def test_lab_control_plane_keeps_its_taint():
    """The contrast that makes the test above mean something."""
    evaluation = evaluate(stack_file_config("lab"))
    documents = yaml.safe_load_all(evaluation.named("cp1-kubeadm-init").inputs["stdin"])
    init = next(d for d in documents if d["kind"] == "InitConfiguration")
    assert "taints" not in init["nodeRegistration"]


def test_no_join_steps_and_nodes_ready_waits_for_calico_only(stack):
    config, evaluation, graph = stack
    assert not [r.name for r in evaluation.registrations
                if r.name.endswith(("-join-token", "-kubeadm-join", "-membership"))]
    assert graph.waits_for("nodes-ready", "tigera-operator-chart")
    assert evaluation.named("nodes-ready").inputs["create"].count(config["nodes"][0]["name"]) >= 1


def test_every_command_runs_on_the_single_node(stack):
    config, evaluation, _ = stack
    address = config["nodes"][0]["address"]
    assert {c.inputs["connection"]["host"] for c in evaluation.commands()} == {address}


def test_pod_network_does_not_contain_the_node(stack):
    import ipaddress
    config, evaluation, _ = stack
    pods = ipaddress.ip_network(config["kubernetes"]["podCidr"])
    assert ipaddress.ip_address(config["nodes"][0]["address"]) not in pods
    cp = config["nodes"][0]["name"]
    documents = yaml.safe_load_all(evaluation.named(f"{cp}-kubeadm-init").inputs["stdin"])
    cluster = next(d for d in documents if d["kind"] == "ClusterConfiguration")
    assert cluster["networking"]["podSubnet"] == str(pods)


def test_dev_kubernetes_objects_go_with_the_cluster(stack):
    config, evaluation, graph = stack
    teardown = graph.urn(f"{config['nodes'][0]['name']}-kubeadm-init")
    objects = [r for r in evaluation.registrations if r.type.startswith("kubernetes:")]
    assert len(objects) > 10
    for registration in objects:
        expected = teardown if not registration.name.endswith("-rollout") else \
            graph.urn(registration.name.removesuffix("-rollout"))
        assert registration.deleted_with == expected, registration.name


def test_dev_smoke_prediction_and_outputs(stack):
    config, evaluation, graph = stack
    address = config["nodes"][0]["address"]
    port = config["serving"]["ingressNodePort"]
    url = f"http://{address}:{port}/v1/models/tf-flower:predict"
    smoke = evaluation.named("smoke-predict-kserve-test-tf-flower")
    assert f"URL={url}" in smoke.inputs["create"]
    assert smoke.inputs["connection"]["host"] == address
    assert graph.waits_for(smoke.name, "isvc-kserve-test-tf-flower")
    outputs = evaluation.outputs
    assert (outputs["ingressAddress"], outputs["ingressPort"]) == (address, port)
    assert outputs["models"]["kserve-test/tf-flower"]["url"] == url
    assert outputs["apiEndpoint"] == f"https://{address}:6443"


def test_dev_kubeconfig_output_is_secret(stack):
    _, evaluation, _ = stack
    kubeconfig = evaluation.outputs["kubeconfig"]
    assert pulumi.runtime.sync_await._sync_await(kubeconfig.is_secret())


def resources(evaluation):
    # The mock runtime registers the root Stack only in a process's first evaluation.
    return [r for r in evaluation.registrations if r.type != "pulumi:pulumi:Stack"]


def test_dev_preview_of_a_fresh_stack_succeeds(dev_config, stack):
    _, full, _ = stack
    preview = evaluate(dev_config, preview=True)
    assert sorted(r.name for r in resources(preview)) == sorted(r.name for r in resources(full))
    init = preview.named(f"{dev_config['nodes'][0]['name']}-kubeadm-init")
    assert init.inputs["stdin"]  # the rendered config does not wait for any command output


def test_dev_two_evaluations_give_identical_inputs(dev_config, stack):
    _, first, _ = stack
    second = evaluate(dev_config)
    assert sorted((r.type, r.name, r.plain) for r in resources(first)) == \
        sorted((r.type, r.name, r.plain) for r in resources(second))


def test_dev_stack_file_passes_the_offline_plan():
    from components.plan.build import plan_stack
    plan = plan_stack(DEV)
    assert {s.node for s in plan.steps.values() if s.kind == "command"} == {"dev1"}
    assert any(s.kind == "model" for s in plan.steps.values())
