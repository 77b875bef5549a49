"""The upgrade under Pulumi's mock runtime: triggered only by kubernetes.version,
refused before any node changes, in kubeadm's order, before the layers."""
import copy

import pytest

from components import versions
from components.offline.graph import Graph
from components.offline.program import ClusterMocks, evaluate
from components.stack_file import stack_file_config

OLD = versions.TRAINS["1.31"].kubernetes_version
NEW = versions.TRAINS["1.32"].kubernetes_version
NEWER = versions.TRAINS["1.33"].kubernetes_version
WORKERS = ["worker1", "worker2"]


def lab(version=None, upgrade=None):
    config = copy.deepcopy(stack_file_config("lab"))
    if version:
        config.setdefault("kubernetes", {})["version"] = version
    if upgrade:
        config["upgrade"] = upgrade
    return config


def running_at(version, nodes=("cp1", *WORKERS)):
    """Mocks whose control plane reports a cluster at `version`."""
    def answers(name, inputs):
        if name == "upgrade-versions":
            return f"api_server={version}\n" + "".join(f"node={n} {version} Ready\n" for n in nodes)
        return ClusterMocks.default_stdout(name, inputs)
    return ClusterMocks(preview=False, command_stdout=answers)


def upgrade_commands(evaluation):
    return [c for c in evaluation.commands() if "upgrade-" in c.name and c.name != "upgrade-versions"]


def test_every_upgrade_command_is_triggered_only_by_the_version():
    evaluation = evaluate(lab(NEW), mocks=running_at(OLD))
    commands = upgrade_commands(evaluation)
    assert {c.name for c in commands} >= {"upgrade-gates", "cp1-upgrade-kubeadm", "worker2-upgrade-uncordon"}
    for command in commands:
        assert command.inputs["triggers"] == [NEW], command.name
        assert command.deleted_with.endswith("cp1-kubeadm-init"), command.name
    assert evaluation.named("upgrade-versions").inputs["triggers"] == [NEW]


def test_an_ordinary_up_changes_no_upgrade_input():
    first = {r.name: r.plain for r in evaluate(lab()).registrations if "upgrade" in r.name}
    again = {r.name: r.plain for r in evaluate(lab()).registrations if "upgrade" in r.name}
    assert first == again
    # Only the version moves them (the batches are dependencies, not inputs).
    wider = {r.name: r.plain for r in evaluate(lab(upgrade={"maxUnavailable": 2})).registrations
             if "upgrade" in r.name}
    assert wider == first


def test_kubeadm_order_on_each_node_and_batches_after_the_control_plane():
    graph = Graph(evaluate(lab(NEW), mocks=running_at(OLD)))
    for node in ("cp1", *WORKERS):
        chain = [f"{node}-upgrade-{s}" for s in ("repository", "kubeadm", "drain", "kubelet", "uncordon")]
        for earlier, later in zip(chain, chain[1:]):
            assert graph.waits_for(later, earlier), (later, earlier)
        assert graph.waits_for(chain[0], "upgrade-gates")
    assert graph.waits_for("upgrade-gates", "nodes-ready")
    assert graph.waits_for("upgrade-gates", "cp1-etcd-backup-timer")  # the snapshot's runner
    assert graph.waits_for("worker1-upgrade-kubeadm", "cp1-upgrade-uncordon")
    assert graph.waits_for("worker2-upgrade-kubeadm", "worker1-upgrade-uncordon")


def test_a_batch_of_two_upgrades_its_workers_side_by_side():
    graph = Graph(evaluate(lab(NEW, {"maxUnavailable": 2}), mocks=running_at(OLD)))
    assert not graph.waits_for("worker2-upgrade-kubeadm", "worker1-upgrade-uncordon")
    assert graph.waits_for("worker2-upgrade-kubeadm", "cp1-upgrade-uncordon")


def test_the_layers_wait_for_the_upgrade():
    evaluation = evaluate(lab(NEW), mocks=running_at(OLD))
    graph = Graph(evaluation)
    for layer in ("istio-base-chart", "cert-manager-chart"):
        assert graph.waits_for(layer, "worker2-upgrade-uncordon"), layer


def test_the_drain_takes_the_configured_timeout():
    evaluation = evaluate(lab(NEW, {"drainTimeout": "25m"}), mocks=running_at(OLD))
    drain = evaluation.named("worker1-upgrade-drain").inputs["create"]
    assert "DRAIN_TIMEOUT=25m" in drain and "ACTION=drain" in drain and "NODE_NAME=worker1" in drain


@pytest.mark.parametrize("current, target, what", [
    (OLD, NEWER, "skips a minor"),
    (NEW, OLD, "a downgrade"),
])
def test_a_refused_version_stops_the_run_before_any_node_changes(current, target, what):
    with pytest.raises(Exception) as caught:
        evaluate(lab(target), mocks=running_at(current))
    message = str(caught.value)
    assert "nothing was changed on any node" in message and what in message
    assert "kserve-cluster:kubernetes.version" in message
    registered = {r.name for r in caught.value.registrations}
    assert not [n for n in registered if n.endswith(("-prepare", "-kubeadm-init"))]


def test_a_stack_node_not_in_the_cluster_refuses_an_upgrade():
    with pytest.raises(Exception) as caught:
        evaluate(lab(NEW), mocks=running_at(OLD, nodes=("cp1", "worker1")))
    assert "worker2 are not in the cluster" in str(caught.value)


def test_a_fresh_stack_passes_the_version_check():
    evaluation = evaluate(lab(NEW))  # no cluster: `api_server=` is empty
    assert evaluation.named("cp1-prepare").inputs["triggers"] == ["preflight passed"]
