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


def mode_of(command) -> str:
    """MODE in the command's environment (its first line; the script's text below
    names both modes in its comments)."""
    env = command.inputs["create"].splitlines()[0].split(" bash -c ")[0].split()
    return next(word.split("=", 1)[1] for word in env if word.startswith("MODE="))


def upgrade_commands(evaluation):
    return [c for c in evaluation.commands() if c.name == "upgrade-gates" or c.name.endswith("-upgrade")]


def test_every_upgrade_command_is_triggered_only_by_the_version():
    evaluation = evaluate(lab(NEW), mocks=running_at(OLD))
    commands = upgrade_commands(evaluation)
    assert {c.name for c in commands} == {"upgrade-gates", "cp1-upgrade", "worker1-upgrade",
                                          "worker2-upgrade"}
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


def test_one_command_per_node_on_its_node_after_the_gates():
    evaluation = evaluate(lab(NEW), mocks=running_at(OLD))
    graph = Graph(evaluation)
    address = {n["name"]: n["address"] for n in lab()["nodes"]}
    for node in ("cp1", *WORKERS):
        command = evaluation.named(f"{node}-upgrade")
        assert command.inputs["connection"]["host"] == address[node]
        assert "upgrade-node.sh" in command.inputs["create"]
        assert f"NODE_NAME={node}" in command.inputs["create"]
        assert mode_of(command) == ("apply" if node == "cp1" else "node")
        # The admin kubeconfig (drain, uncordon) goes on stdin, as a secret.
        assert "stdin" in command.secret_paths, node
        assert graph.waits_for(f"{node}-upgrade", "upgrade-gates")
    assert graph.waits_for("upgrade-gates", "nodes-ready")
    assert graph.waits_for("upgrade-gates", "cp1-etcd-backup-timer")  # the snapshot's runner
    assert graph.waits_for("worker1-upgrade", "cp1-upgrade")
    assert graph.waits_for("worker2-upgrade", "worker1-upgrade")


def test_a_fresh_build_has_one_upgrade_command_per_node():
    names = sorted(c.name for c in upgrade_commands(evaluate(lab())))
    assert names == ["cp1-upgrade", "upgrade-gates", "worker1-upgrade", "worker2-upgrade"]


def test_a_batch_of_two_upgrades_its_workers_side_by_side():
    graph = Graph(evaluate(lab(NEW, {"maxUnavailable": 2}), mocks=running_at(OLD)))
    assert not graph.waits_for("worker2-upgrade", "worker1-upgrade")
    assert graph.waits_for("worker2-upgrade", "cp1-upgrade")


def test_the_layers_wait_for_the_upgrade():
    evaluation = evaluate(lab(NEW), mocks=running_at(OLD))
    graph = Graph(evaluation)
    for layer in ("istio-base-chart", "cert-manager-chart"):
        assert graph.waits_for(layer, "worker2-upgrade"), layer


def test_the_drain_takes_the_configured_timeout():
    evaluation = evaluate(lab(NEW, {"drainTimeout": "25m"}), mocks=running_at(OLD))
    drain = evaluation.named("worker1-upgrade").inputs["create"]
    assert "DRAIN_TIMEOUT=25m" in drain and "NODE_NAME=worker1" in drain


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


def test_three_control_planes_apply_once_then_upgrade_node_one_at_a_time():
    from test_program_ha import HA_STACK
    config = copy.deepcopy(HA_STACK)
    config["kubernetes"]["version"] = NEW
    names = [n["name"] for n in config["nodes"]]

    def answers(name, inputs):
        if name == "upgrade-versions":
            return (f"api_server={OLD}\n" + "".join(f"api_server_of={n} {OLD}\n" for n in names[:3])
                    + "".join(f"node={n} {OLD} Ready\n" for n in names))
        return ClusterMocks.default_stdout(name, inputs)
    evaluation = evaluate(config, mocks=ClusterMocks(preview=False, command_stdout=answers))
    graph = Graph(evaluation)
    modes = {n: mode_of(evaluation.named(f"{n}-upgrade")) for n in names}
    assert modes == {"cp1": "apply", "cp2": "node", "cp3": "node", "worker1": "node", "worker2": "node"}
    assert graph.waits_for("cp2-upgrade", "cp1-upgrade")
    assert graph.waits_for("cp3-upgrade", "cp2-upgrade")
    assert graph.waits_for("worker1-upgrade", "cp3-upgrade")
    assert not graph.waits_for("cp2-upgrade", "cp3-upgrade")
    # The gates and the snapshot run on the first control plane, before any node.
    assert evaluation.named("upgrade-gates").inputs["connection"]["host"] == "10.0.2.21"
    for name in names:
        assert graph.waits_for(f"{name}-upgrade", "upgrade-gates")
