"""Three control planes behind a virtual IP, under Pulumi's mock runtime: the order
(VIP -> init -> join cp2 -> join cp3 -> workers; a snapshot before each join),
the secrets, and where each step runs."""
import copy

import pytest
import yaml

from components.offline.graph import Graph
from components.offline.program import ClusterMocks, evaluate, fake_control_plane_join_command

CPS = ["cp1", "cp2", "cp3"]
ADDRESS = {"cp1": "10.0.2.21", "cp2": "10.0.2.22", "cp3": "10.0.2.23",
           "worker1": "10.0.2.31", "worker2": "10.0.2.32"}
HA_STACK = {
    "nodes": [{"name": n, "address": a, "role": "control-plane" if n.startswith("cp") else "worker"}
              for n, a in ADDRESS.items()],
    "ssh": {"user": "ubuntu"},
    "kubernetes": {"highAvailability": {"virtualIP": "10.0.2.20"}},
}
WORKERS = ["worker1", "worker2"]


@pytest.fixture(scope="module")
def ha():
    evaluation = evaluate(copy.deepcopy(HA_STACK))
    return evaluation, Graph(evaluation)


def test_every_control_plane_serves_the_virtual_ip_before_kubeadm(ha):
    evaluation, graph = ha
    for cp in CPS:
        endpoint = evaluation.named(f"{cp}-ha-endpoint")
        assert endpoint.inputs["connection"]["host"] == ADDRESS[cp]
        assert "ha-endpoint-remove.sh" in endpoint.inputs["delete"]
        assert graph.waits_for(f"{cp}-ha-endpoint", f"{cp}-prepare")
        # independent of the other control planes' steps
        others = {f"{o}-prepare" for o in CPS if o != cp}
        assert not graph.upstream(f"{cp}-ha-endpoint") & others
    assert graph.waits_for("cp1-kubeadm-init", "cp1-ha-endpoint")
    for cp in CPS[1:]:
        assert graph.waits_for(f"{cp}-kubeadm-join", f"{cp}-ha-endpoint")
    assert not any(r.name.endswith("-ha-endpoint") for r in evaluation.commands()
                   if r.name.startswith("worker"))


def test_init_uploads_certificates_and_names_the_virtual_ip(ha):
    evaluation, _ = ha
    init = evaluation.named("cp1-kubeadm-init")
    assert "UPLOAD_CERTS=true" in init.inputs["create"]
    assert "CONTROL_PLANE_ENDPOINT=10.0.2.20:8443" in init.inputs["create"]
    cluster = [d for d in yaml.safe_load_all(init.inputs["stdin"])
               if d["kind"] == "ClusterConfiguration"][0]
    assert cluster["controlPlaneEndpoint"] == "10.0.2.20:8443"
    assert cluster["apiServer"]["certSANs"] == ["10.0.2.20"]
    assert evaluation.outputs["apiEndpoint"] == "https://10.0.2.20:8443"


def test_control_planes_join_one_at_a_time_after_a_snapshot(ha):
    _, graph = ha
    assert graph.waits_for("cp2-snapshot-before-join", "cp1-kubeadm-init")
    assert graph.waits_for("cp2-snapshot-before-join", "cp1-etcd-backup-timer")
    assert graph.waits_for("cp2-join-key", "cp2-snapshot-before-join")
    assert graph.waits_for("cp2-kubeadm-join", "cp2-join-key")
    # cp3: its snapshot is taken once cp2 is a member and a registered node
    assert graph.waits_for("cp3-snapshot-before-join", "cp2-kubeadm-join")
    assert graph.waits_for("cp3-snapshot-before-join", "cp2-membership")
    assert graph.waits_for("cp3-join-key", "cp3-snapshot-before-join")
    assert graph.waits_for("cp3-kubeadm-join", "cp3-join-key")
    assert not graph.waits_for("cp2-kubeadm-join", "cp3-prepare")


def test_workers_join_through_the_virtual_ip_after_the_last_control_plane(ha):
    evaluation, graph = ha
    for worker in WORKERS:
        assert graph.waits_for(f"{worker}-join-token", "cp3-kubeadm-join")
        join = yaml.safe_load(evaluation.named(f"{worker}-kubeadm-join").inputs["stdin"])
        assert "controlPlane" not in join
    assert graph.waits_for("nodes-ready", "cp2-membership")
    assert graph.waits_for("nodes-ready", "cp3-membership")


def test_control_plane_join_config_carries_the_key_as_a_secret(ha):
    evaluation, _ = ha
    for cp in CPS[1:]:
        key_step = evaluation.named(f"{cp}-join-key")
        assert key_step.inputs["connection"]["host"] == ADDRESS["cp1"]
        assert "stdout" in key_step.additional_secret_outputs
        join = evaluation.named(f"{cp}-kubeadm-join")
        assert join.inputs["connection"]["host"] == ADDRESS[cp]
        assert "stdin" in join.secret_paths
        assert "join-control-plane.sh" in join.inputs["create"]
        config = yaml.safe_load(join.inputs["stdin"])
        expected_key = fake_control_plane_join_command(cp).split("--certificate-key ")[1].strip()
        assert config["controlPlane"] == {
            "localAPIEndpoint": {"advertiseAddress": ADDRESS[cp], "bindPort": 6443},
            "certificateKey": expected_key}
        assert config["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "10.0.2.20:8443"
        assert "taints" not in config["nodeRegistration"]  # control planes keep NoSchedule
        assert "reset.sh" in join.inputs["delete"]
    keys = [fake_control_plane_join_command(cp).split("--certificate-key ")[1].strip()
            for cp in CPS[1:]]
    for registration in evaluation.registrations:
        for key in keys:
            assert key not in registration.plain, registration.name


def test_backup_and_renewal_timers_on_every_control_plane(ha):
    evaluation, graph = ha
    for cp in CPS:
        assert evaluation.named(f"{cp}-etcd-backup-timer").inputs["connection"]["host"] == ADDRESS[cp]
        assert evaluation.named(f"{cp}-cert-renewal").inputs["connection"]["host"] == ADDRESS[cp]
    for cp in CPS[1:]:
        assert graph.waits_for(f"{cp}-etcd-backup-timer", f"{cp}-kubeadm-join")
        assert graph.waits_for(f"{cp}-cert-renewal", f"{cp}-kubeadm-join")
        # Deleted in reverse: the membership (on cp1: drain, etcd member remove,
        # delete node) before anything that needs SSH to the leaving node.
        membership = evaluation.named(f"{cp}-membership")
        assert "ACTION=remove-control-plane" in membership.inputs["delete"]
        assert membership.inputs["connection"]["host"] == ADDRESS["cp1"]
        for step in ("etcd-backup-timer", "cert-renewal", "kubeadm-join"):
            assert graph.waits_for(f"{cp}-membership", f"{cp}-{step}")
    backup = evaluation.outputs["backup"]
    assert backup["nodes"] == CPS
    assert [m["name"] for m in backup["etcdMembers"]] == CPS
    assert backup["etcdMembers"][1]["peerURL"] == "https://10.0.2.22:2380"


def test_keepalived_and_haproxy_config_per_node(ha):
    evaluation, _ = ha
    for index, cp in enumerate(CPS):
        create = evaluation.named(f"{cp}-ha-endpoint").inputs["create"]
        assert f"unicast_src_ip {ADDRESS[cp]}" in create
        assert f"priority {150 - 10 * index}" in create
        assert "10.0.2.20/24" in create
        for other in CPS:
            assert f"server {other} {ADDRESS[other]}:6443 check" in create


def test_a_cluster_with_no_workers_schedules_on_every_control_plane():
    stack = copy.deepcopy(HA_STACK)
    stack["nodes"] = [n for n in stack["nodes"] if n["role"] == "control-plane"]
    evaluation = evaluate(stack)
    for cp in CPS[1:]:
        config = yaml.safe_load(evaluation.named(f"{cp}-kubeadm-join").inputs["stdin"])
        assert config["nodeRegistration"]["taints"] == []


def test_a_single_control_plane_stack_has_no_ha_steps():
    stack = copy.deepcopy(HA_STACK)
    stack["nodes"] = [n for n in stack["nodes"] if n["name"] in ("cp1", "worker1")]
    del stack["kubernetes"]
    evaluation = evaluate(stack)
    names = {r.name for r in evaluation.registrations}
    assert not {n for n in names if "ha-endpoint" in n or "join-key" in n or "snapshot" in n}
    init = evaluation.named("cp1-kubeadm-init")
    assert init.inputs["create"].startswith("sudo -n env LOGIN_USER=ubuntu bash -c ")
    assert "certSANs" not in init.inputs["stdin"]


def test_preview_of_a_fresh_ha_stack_succeeds_with_unknowns():
    evaluation = evaluate(copy.deepcopy(HA_STACK), preview=True)
    join = evaluation.named("cp2-kubeadm-join")
    assert "stdin" in join.unknown_paths or join.inputs.get("stdin") is None


def previous_run(control_planes, workers=WORKERS):
    """The `nodes` output of the last `pulumi up` with these control planes."""
    return {"nodes": [{"name": n, "address": ADDRESS.get(n, "10.0.2.29"), "role": "control-plane"}
                      for n in control_planes]
            + [{"name": w, "address": ADDRESS[w], "role": "worker"} for w in workers]}


def with_control_planes(names):
    stack = copy.deepcopy(HA_STACK)
    nodes = [{"name": n, "address": ADDRESS.get(n, "10.0.2.24"), "role": "control-plane"}
             for n in names]
    stack["nodes"] = nodes + [n for n in stack["nodes"] if n["role"] == "worker"]
    return stack


def assert_stopped_at_the_gate(caught):
    message = str(caught.value)
    assert "Traceback" not in message
    registered = {r.name for r in caught.value.registrations}
    assert "cluster" in registered  # the program got as far as the cluster layer
    # Nothing past the gate: no node prepared, no keepalived/haproxy rewritten on cp1.
    assert not [n for n in registered
                if n.endswith(("-prepare", "-ha-endpoint", "-kubeadm-init", "-kubeadm-join"))]
    assert "control-plane-change" not in registered
    return message


def test_two_control_planes_on_a_first_up_stop_before_any_node():
    with pytest.raises(Exception) as caught:
        evaluate(with_control_planes(["cp1", "cp2"]))
    message = assert_stopped_at_the_gate(caught)
    assert "2 control planes as the cluster's first count" in message


def test_removing_two_at_once_stops_before_cp1_is_touched():
    """3 -> 1 used to rewrite cp1's keepalived and haproxy before cp1's check refused."""
    with pytest.raises(Exception) as caught:
        evaluate(with_control_planes(["cp1"]),
                 mocks=ClusterMocks(False, previous_outputs=previous_run(CPS)))
    message = assert_stopped_at_the_gate(caught)
    assert "removes 2 control planes in one run (cp2, cp3)" in message


def test_growing_to_an_even_count_stops_before_any_node():
    with pytest.raises(Exception) as caught:
        evaluate(with_control_planes(["cp1", "cp2", "cp3", "cp4"]),
                 mocks=ClusterMocks(False, previous_outputs=previous_run(CPS)))
    assert "4 control planes (from 3)" in assert_stopped_at_the_gate(caught)


def test_the_preview_refuses_too():
    with pytest.raises(Exception, match="removes 2 control planes in one run"):
        evaluate(with_control_planes(["cp1"]), preview=True,
                 mocks=ClusterMocks(True, previous_outputs=previous_run(CPS)))


def test_shrinking_three_to_two_then_one_runs_with_a_warning():
    three = evaluate(copy.deepcopy(HA_STACK))
    two = evaluate(with_control_planes(["cp1", "cp2"]),
                   mocks=ClusterMocks(False, previous_outputs=previous_run(CPS)))
    before = {r.name: r.plain for r in three.registrations}
    after = {r.name: r.plain for r in two.registrations}
    gone = set(before) - set(after)
    assert {"cp3-kubeadm-join", "cp3-membership", "cp3-ha-endpoint", "cp3-etcd-backup-timer",
            "cp3-cert-renewal", "cp3-reset"} <= gone
    assert not [n for n in gone if n != "cp3" and not n.startswith("cp3-")], gone
    # cp2 stays as it was; cp1's check runs again with the new list, and the VIP stays
    # (keepalived's peers lose cp3).
    for name in ("cp2-kubeadm-join", "cp2-membership", "cp1-kubeadm-init"):
        assert before[name] == after[name], name
    assert "10.0.2.23" not in after["cp1-ha-endpoint"]
    assert "CONTROL_PLANES='cp1 cp2'" in two.named("control-plane-change").inputs["create"]
    one = evaluate(with_control_planes(["cp1"]),
                   mocks=ClusterMocks(False, previous_outputs=previous_run(["cp1", "cp2"])))
    assert "CONTROL_PLANES=cp1 " in one.named("control-plane-change").inputs["create"]
    assert one.named("cp1-ha-endpoint")
    assert one.outputs["apiEndpoint"] == "https://10.0.2.20:8443"


def test_replacing_cp3_by_cp4_in_one_run_joins_cp4_before_cp3_goes():
    """Pulumi deletes what left the program after every create and update; cp4's steps
    are new, cp3's only leave, so cp4 joins (and is a registered node) first."""
    replaced = evaluate(with_control_planes(["cp1", "cp2", "cp4"]),
                        mocks=ClusterMocks(False, previous_outputs=previous_run(CPS)))
    graph = Graph(replaced)
    registered = {r.name for r in replaced.registrations}
    assert not [n for n in registered if n.startswith("cp3-")]
    assert graph.waits_for("cp4-snapshot-before-join", "cp2-membership")
    assert graph.waits_for("cp4-kubeadm-join", "cp4-join-key")
    assert graph.waits_for("nodes-ready", "cp4-membership")
    # cp1's check sees the new list (cp3 leaves, one member) before cp4 joins.
    assert graph.waits_for("cp4-snapshot-before-join", "control-plane-change")
    assert "CONTROL_PLANES='cp1 cp2 cp4'" in replaced.named("control-plane-change").inputs["create"]
    for worker in WORKERS:
        assert graph.waits_for(f"{worker}-join-token", "cp4-membership")


def test_a_change_of_control_planes_is_checked_on_the_first_before_any_join(ha):
    evaluation, graph = ha
    gate = evaluation.named("control-plane-change")
    assert gate.inputs["connection"]["host"] == ADDRESS["cp1"]
    assert "CONTROL_PLANES='cp1 cp2 cp3'" in gate.inputs["create"]
    assert graph.waits_for("control-plane-change", "cp1-kubeadm-init")
    assert graph.waits_for("cp2-snapshot-before-join", "control-plane-change")
    assert gate.deleted_with == graph.urn("cp1-kubeadm-init")


def test_preflight_wants_haproxys_port_free_on_control_planes_only(ha):
    evaluation, _ = ha
    for name in ADDRESS:
        ports = evaluation.named(f"{name}-preflight").inputs["create"].split("PORTS=")[1].split("'")[1]
        assert ("8443" in ports.split()) == name.startswith("cp"), (name, ports)


def test_a_leaving_control_plane_is_reset_from_this_machine(ha):
    """A control plane gone for good: its etcd member goes from cp1 (membership), and
    its own steps run no delete over SSH: `<cp>-reset` (scripts/reset_node.py) removes
    the timers and keepalived/haproxy and resets it, or warns when it does not answer."""
    evaluation, graph = ha
    for cp in CPS[1:]:
        reset = evaluation.named(f"{cp}-reset")
        assert reset.type == "command:local:Command"
        assert reset.inputs["delete"] == "python3 scripts/reset_node.py"
        assert "create" not in reset.inputs or not reset.inputs["create"]
        assert "stdin" in reset.secret_paths and "PRIVATE KEY" not in reset.plain
        for step in (f"{cp}-kubeadm-join", f"{cp}-etcd-backup-timer", f"{cp}-cert-renewal",
                     f"{cp}-ha-endpoint"):
            assert evaluation.named(step).deleted_with == graph.urn(f"{cp}-reset"), step
        # Deleted first (it waits for the reset): the member goes from cp1 before the reset.
        assert graph.waits_for(f"{cp}-membership", f"{cp}-reset")
        assert "remove-control-plane" in evaluation.named(f"{cp}-membership").inputs["delete"]
    assert not [r for r in evaluation.registrations if r.name == "cp1-reset"]
