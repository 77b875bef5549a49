"""`pulumi up` runs the preflight checks first: one bad node stops every preparation."""
import pytest

from components.offline.graph import Graph
from components.offline.program import ClusterMocks, evaluate
from components.stack_file import stack_file_config


def test_every_node_is_checked_read_only_and_gates_every_preparation():
    config = stack_file_config("lab")
    evaluation = evaluate(config)
    graph = Graph(evaluation)
    nodes = [n["name"] for n in config["nodes"]]
    for node in nodes:
        facts = evaluation.named(f"{node}-preflight")
        assert "preflight-facts.sh" in facts.inputs["create"]
        assert not facts.inputs["create"].startswith("sudo")  # a password prompt is reported, not awaited
        assert "PORTS=" in facts.inputs["create"]
        assert "delete" not in facts.inputs or not facts.inputs["delete"]
        # Gathered once: a later change must not re-run it on a node that now runs the cluster.
        assert set(facts.ignore_changes) >= {"create", "connection"}
        for other in nodes:
            # Cross-node: every preparation waits for every node's facts.
            assert graph.waits_for(f"{node}-prepare", f"{other}-preflight")
        assert evaluation.named(f"{node}-prepare").inputs["triggers"] == ["preflight passed"]


def test_a_bad_node_stops_the_run_before_any_node_is_prepared():
    def answers(name, inputs):
        text = ClusterMocks.default_stdout(name, inputs)
        if name == "worker2-preflight":
            text = text.replace("os_id=ubuntu", "os_id=debian").replace("os_version=22.04", "os_version=12")
            text = text.replace("os_name=Ubuntu 22.04.5 LTS", "os_name=Debian GNU/Linux 12 (bookworm)")
        return text

    mocks = ClusterMocks(preview=False, command_stdout=answers)
    with pytest.raises(Exception) as caught:
        evaluate(stack_file_config("lab"), mocks=mocks)
    registered = {r.name for r in caught.value.registrations}
    assert {"cp1-preflight", "worker1-preflight", "worker2-preflight"} <= registered
    assert not [name for name in registered if name.endswith(("-prepare", "-kubeadm-init"))]
    message = str(caught.value)
    assert "preflight failed; nothing was changed on any node" in message
    assert "worker2 (10.0.2.23) os FAIL" in message and "Debian GNU/Linux 12" in message


def test_preview_leaves_the_verdict_unknown():
    prepare = evaluate(stack_file_config("lab"), preview=True).named("cp1-prepare")
    assert "triggers[0]" in prepare.unknown_paths
