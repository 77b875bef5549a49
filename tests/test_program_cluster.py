"""The whole program under Pulumi's mock runtime: the bootstrap layer's graph."""
import copy

import pulumi
import pytest

from components.offline.graph import Graph
from components.offline.program import FAKE_PRIVATE_KEY, evaluate, fake_join_command
from components.stack_file import stack_file_config


def big_stack(workers=10):
    nodes = [{"name": "cp1", "address": "10.1.0.10", "role": "control-plane"}]
    nodes += [{"name": f"worker-{i}", "address": f"10.1.0.{20 + i}", "role": "worker"}
              for i in range(1, workers + 1)]
    return {"nodes": nodes, "ssh": {"user": "ubuntu"}}


STACKS = {"lab": lambda: stack_file_config("lab"), "1+10": big_stack}


@pytest.fixture(scope="module", params=sorted(STACKS))
def stack(request):
    config = STACKS[request.param]()
    evaluation = evaluate(config)
    return config, evaluation, Graph(evaluation)


def names(config, role=None):
    return [n["name"] for n in config["nodes"] if role is None or n["role"] == role]


def control_plane(config):
    return names(config, "control-plane")[0]


def test_one_preparation_per_node_with_no_edge_between_nodes(stack):
    config, evaluation, graph = stack
    preps = [r.name for r in evaluation.commands() if r.name.endswith("-prepare")]
    assert sorted(preps) == sorted(f"{n}-prepare" for n in names(config))
    for prep in preps:
        assert not (graph.upstream(prep) & set(preps)), f"{prep} waits for another node"


def test_init_after_the_control_plane_is_prepared(stack):
    config, _, graph = stack
    cp = control_plane(config)
    assert f"{cp}-prepare" in graph.direct(f"{cp}-kubeadm-init")
    workers_prep = {f"{w}-prepare" for w in names(config, "worker")}
    assert not (graph.upstream(f"{cp}-kubeadm-init") & workers_prep)


def test_each_join_after_its_own_preparation_and_after_init(stack):
    config, _, graph = stack
    cp = control_plane(config)
    for worker in names(config, "worker"):
        join = f"{worker}-kubeadm-join"
        assert graph.waits_for(join, f"{worker}-prepare")
        assert graph.waits_for(join, f"{cp}-kubeadm-init")
        assert graph.waits_for(join, f"{worker}-join-token")
        others = {f"{w}-prepare" for w in names(config, "worker") if w != worker}
        assert not (graph.upstream(join) & others), f"{join} waits for another worker"


def test_calico_after_init_through_the_provider(stack):
    config, evaluation, graph = stack
    cp = control_plane(config)
    release = evaluation.named("tigera-operator-chart")
    assert release.type == "kubernetes:helm.sh/v3:Release"
    assert graph.waits_for("tigera-operator-chart", f"{cp}-kubeadm-init")
    assert graph.waits_for("tigera-operator-chart", f"{cp}-admin-kubeconfig")
    assert graph.urn("kubernetes") in release.provider  # the cluster's own provider


def test_nodes_ready_waits_for_calico_and_every_worker(stack):
    config, _, graph = stack
    for worker in names(config, "worker"):
        assert graph.waits_for("nodes-ready", f"{worker}-membership")
    assert graph.waits_for("nodes-ready", "tigera-operator-chart")


def test_secrets_are_marked_secret(stack):
    config, evaluation, _ = stack
    cp = control_plane(config)
    assert "stdout" in evaluation.named(f"{cp}-admin-kubeconfig").additional_secret_outputs
    for worker in names(config, "worker"):
        assert "stdout" in evaluation.named(f"{worker}-join-token").additional_secret_outputs
        assert "stdin" in evaluation.named(f"{worker}-kubeadm-join").secret_paths
    assert "kubeconfig" in evaluation.named("kubernetes").secret_paths  # the provider's input
    for command in evaluation.commands():
        assert "connection" in command.secret_paths, command.name  # it carries the key


def test_no_key_or_token_in_plain_text_anywhere(stack):
    config, evaluation, _ = stack
    tokens = [fake_join_command(w).split("--token ")[1].split()[0] for w in names(config, "worker")]
    key_body = FAKE_PRIVATE_KEY.splitlines()[1]
    for registration in evaluation.registrations:
        assert key_body not in registration.plain, registration.name
        for token in tokens:
            assert token not in registration.plain, registration.name


def test_every_ssh_connection_aims_at_the_configured_address(stack):
    config, evaluation, _ = stack
    address = {n["name"]: n["address"] for n in config["nodes"]}
    cp = control_plane(config)
    on_own_node = {f"{n}-{step}": n for n in names(config)
                   for step in ("prepare", "preflight", "upgrade")}
    on_own_node.update({f"{w}-kubeadm-join": w for w in names(config, "worker")})
    for command in evaluation.commands():
        # Steps on a node itself go there; every other step talks to the cluster
        # from the control plane.
        expected = address[on_own_node.get(command.name, cp)]
        assert command.inputs["connection"]["host"] == expected, command.name
        assert command.inputs["connection"]["user"] == "ubuntu"


def test_kubernetes_objects_are_deleted_with_the_cluster(stack):
    config, evaluation, graph = stack
    init_urn = graph.urn(f"{control_plane(config)}-kubeadm-init")
    assert evaluation.named("tigera-operator-chart").deleted_with == init_urn
    assert evaluation.named("nodes-ready").deleted_with == init_urn
    for worker in names(config, "worker"):
        # drained only when the worker alone is removed, not when the cluster goes
        assert evaluation.named(f"{worker}-membership").deleted_with == init_urn


def test_destroy_resets_workers_before_the_control_plane(stack):
    config, evaluation, graph = stack
    cp = control_plane(config)
    init = evaluation.named(f"{cp}-kubeadm-init")
    assert "reset.sh" in init.inputs["delete"]
    for worker in names(config, "worker"):
        join = evaluation.named(f"{worker}-kubeadm-join")
        # The worker's reset runs from this machine (scripts/reset_node.py), which
        # tolerates a worker that is gone (components/cluster/leave.py).
        assert not join.inputs.get("delete")
        reset = evaluation.named(f"{worker}-reset")
        assert reset.type == "command:local:Command"
        assert reset.inputs["delete"] == "python3 scripts/reset_node.py"
        assert not reset.inputs.get("create")
        assert "stdin" in reset.secret_paths
        # Pulumi deletes dependents first: a reset that waits for init runs before its delete.
        assert graph.waits_for(reset.name, join.name) and graph.waits_for(join.name, init.name)
        membership = evaluation.named(f"{worker}-membership")
        assert "ACTION=remove" in membership.inputs["delete"]
        assert graph.waits_for(membership.name, reset.name)  # drained before it is reset


def test_a_leaving_workers_reset_document_names_the_node_and_its_key(stack):
    import json
    config, evaluation, _ = stack
    for entry in (n for n in config["nodes"] if n["role"] == "worker"):
        reset = evaluation.named(f"{entry['name']}-reset")
        document = json.loads(reset.inputs["stdin"])
        assert document["node"]["name"] == entry["name"]
        assert document["node"]["address"] == entry["address"]
        assert document["node"]["host_key"] == entry.get("hostKey")
        assert document["privateKey"] or document["useAgent"]
        assert entry["name"] not in reset.inputs["delete"], "nothing about the node on the command line"


def test_stack_outputs(stack):
    config, evaluation, _ = stack
    outputs = evaluation.outputs
    assert set(outputs) >= {"kubeconfig", "apiEndpoint", "nodes"}
    cp_address = config["nodes"][0]["address"]
    assert outputs["apiEndpoint"] == f"https://{cp_address}:6443"
    assert [n["name"] for n in outputs["nodes"]] == names(config)
    assert [n["role"] for n in outputs["nodes"]] == [n["role"] for n in config["nodes"]]


def test_kubeconfig_output_is_secret():
    evaluation = evaluate(stack_file_config("lab"))
    kubeconfig = evaluation.outputs["kubeconfig"]
    assert isinstance(kubeconfig, pulumi.Output)
    assert pulumi.runtime.sync_await._sync_await(kubeconfig.is_secret())


def test_preview_of_a_fresh_stack_succeeds_with_unknowns():
    evaluation = evaluate(stack_file_config("lab"), preview=True)
    join = evaluation.named("worker1-kubeadm-join")
    assert "stdin" in join.unknown_paths or join.inputs.get("stdin") is None
    assert evaluation.named("tigera-operator-chart").type == "kubernetes:helm.sh/v3:Release"
    assert len(evaluation.commands()) == len(evaluate(stack_file_config("lab")).commands())


def test_two_evaluations_give_identical_inputs():
    first = evaluate(stack_file_config("lab"))
    second = evaluate(stack_file_config("lab"))
    assert sorted((r.type, r.name, r.plain) for r in first.registrations) == \
        sorted((r.type, r.name, r.plain) for r in second.registrations)


def test_adding_a_worker_leaves_the_others_inputs_unchanged():
    config = stack_file_config("lab")
    before = {r.name: r.plain for r in evaluate(config).registrations}
    bigger = copy.deepcopy(config)
    bigger["nodes"].append({"name": "worker3", "address": "10.0.2.24", "role": "worker"})
    after = {r.name: r.plain for r in evaluate(bigger).registrations}
    added = set(after) - set(before)
    assert added == {"worker3", "worker3-preflight", "worker3-prepare", "worker3-join-token",
                     "worker3-kubeadm-join", "worker3-reset",
                     "worker3-membership", "worker3-upgrade"}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"nodes-ready", "cluster"} or changed == {"nodes-ready"}, changed


def test_bad_config_stops_before_any_resource():
    config = stack_file_config("lab")
    config["nodes"][1]["address"] = "10.0.2.300"
    with pytest.raises(Exception) as caught:
        evaluate(config)
    assert "nodes[1] (worker1).address = '10.0.2.300'" in str(caught.value)


def test_private_key_file_is_read_into_a_secret(tmp_path):
    key = tmp_path / "id_test"
    key.write_text(FAKE_PRIVATE_KEY)
    config = stack_file_config("lab")
    config["ssh"] = {"privateKeyPath": str(key)}
    evaluation = evaluate(config, secret_private_key=None)
    for command in evaluation.commands():
        assert "connection" in command.secret_paths
        assert "bW9jay1rZXk" not in command.plain
