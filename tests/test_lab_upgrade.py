"""SSH lab: a running cluster upgraded 1.31 -> 1.32 -> 1.33 in kubeadm's order, a
failure in the middle of the workers then a re-run that resumes, and the gates
refusing a NotReady node. The stand-ins refuse what the real tools refuse (a
skipped minor, a kubeadm older than its target, a kubelet newer than the API
server, a package from another minor's repository)."""
import json

from components import versions
from lab.fixtures import lab_marks, runner_for, up
from lab.runner import LabRunError

pytestmark = lab_marks

NAMES = ["cp1", "worker1", "worker2", "worker3"]
WORKERS = NAMES[1:]
OLD = versions.TRAINS["1.31"].kubernetes_version
NEW = versions.TRAINS["1.32"].kubernetes_version
NEWER = versions.TRAINS["1.33"].kubernetes_version


def upgrade_to(lab, runner, version, **upgrade):
    config = lab.stack_config(NAMES)
    config["kubernetes"] = {"version": version}
    if upgrade:
        config["upgrade"] = upgrade
    return runner.up(config, lab.key.private_openssh)


def built(lab):
    nodes = lab.start(NAMES)
    runner = runner_for(lab)
    up(lab, runner, NAMES)
    # The snapshot runner etcd-backup-install.sh puts in place (etcd itself is not in the lab).
    nodes[0].run("install -d /usr/local/sbin && printf '#!/bin/sh\\necho snapshot=/var/lib/s.db\\n' "
                 ">/usr/local/sbin/kserve-etcd-snapshot && chmod 0755 /usr/local/sbin/kserve-etcd-snapshot")
    return nodes, runner


def kubelet_versions(lab):
    return {n: node.get("kubelet_version") for n, node in lab.cluster()["nodes"].items()}


def test_one_minor_at_a_time_in_kubeadm_order(lab):
    nodes, runner = built(lab)
    cp = nodes[0]
    assert set(kubelet_versions(lab).values()) == {f"v{OLD}"}
    # An ordinary up touches no version.
    before = len(cp.calls_matching("kubeadm", "upgrade"))
    up(lab, runner, NAMES)
    assert len(cp.calls_matching("kubeadm", "upgrade")) == before == 0

    upgrade_to(lab, runner, NEW)
    assert lab.cluster()["kubernetes_version"] == f"v{NEW}"
    assert set(kubelet_versions(lab).values()) == {f"v{NEW}"}
    assert not any(node.get("cordoned") for node in lab.cluster()["nodes"].values())
    repo = versions.kubernetes_apt_repo("1.32")
    for node in nodes:
        assert repo in node.read("/etc/apt/sources.list.d/kubernetes.list")
    # kubeadm's order on the control plane, and the workers one at a time after it.
    apply = cp.calls_matching("kubeadm", "apply")[0]
    plan = cp.calls_matching("kubeadm", "plan")[0]
    assert plan.time < apply.time
    # Each node drains and uncordons itself (its command has the admin kubeconfig on stdin).
    by_name = dict(zip(NAMES, nodes))
    drains = {n: by_name[n].calls_matching("kubectl", "drain", n)[0].time for n in NAMES}
    uncordons = {n: by_name[n].calls_matching("kubectl", "uncordon", n)[0].time for n in NAMES}
    restarts = {n: by_name[n].calls_matching("systemctl", "restart", "kubelet")[-1].time for n in NAMES}
    assert apply.time < drains["cp1"] < restarts["cp1"] < uncordons["cp1"] < drains["worker1"] \
        < restarts["worker1"] < uncordons["worker1"] < drains["worker2"] < uncordons["worker2"] \
        < drains["worker3"] < uncordons["worker3"]
    # No admin kubeconfig, no drain marker is left behind on a node.
    for node in nodes:
        assert node.run("ls -A /var/lib/kserve-cluster/upgrade").stdout == "", node.name

    # Skipping 1.33 -> 1.34 is impossible; 1.32 -> 1.33 is the next step.
    upgrade_to(lab, runner, NEWER)
    assert lab.cluster()["kubernetes_version"] == f"v{NEWER}"
    assert set(kubelet_versions(lab).values()) == {f"v{NEWER}"}


def test_a_skipped_minor_is_refused_before_any_node_changes(lab):
    nodes, runner = built(lab)
    calls = {n.name: len(n.calls("kubeadm")) for n in nodes}
    try:
        upgrade_to(lab, runner, NEWER)
    except LabRunError as error:
        message = str(error)
    else:
        raise AssertionError("a skipped minor was not refused")
    assert "skips a minor" in message and f"upgrade to {NEW} first" in message
    assert {n.name: len(n.calls("kubeadm")) for n in nodes} == calls
    assert lab.cluster()["kubernetes_version"] == f"v{OLD}"


def test_a_failure_in_the_middle_of_the_workers_then_a_rerun_resumes(lab):
    nodes, runner = built(lab)
    worker2 = nodes[2]
    worker2.fault("kubeadm-upgrade", fail=1, message="[upgrade] lab: injected failure")
    try:
        upgrade_to(lab, runner, NEW)
    except LabRunError as error:
        assert "worker2-upgrade" in str(error)
    else:
        raise AssertionError("the planted failure did not stop the run")
    assert kubelet_versions(lab) == {"cp1": f"v{NEW}", "worker1": f"v{NEW}",
                                     "worker2": f"v{OLD}", "worker3": f"v{OLD}"}
    cp, worker1 = nodes[0], nodes[1]
    applies, worker1_restarts = len(cp.calls_matching("kubeadm", "apply")), \
        len(worker1.calls_matching("systemctl", "restart", "kubelet"))

    upgrade_to(lab, runner, NEW)
    assert set(kubelet_versions(lab).values()) == {f"v{NEW}"}
    # Finished nodes are never redone.
    assert len(cp.calls_matching("kubeadm", "apply")) == applies == 1
    assert len(worker1.calls_matching("systemctl", "restart", "kubelet")) == worker1_restarts


def test_the_gates_refuse_a_not_ready_node(lab):
    nodes, runner = built(lab)
    state_path = lab.dir / "cluster" / "cluster.json"
    state = json.loads(state_path.read_text())
    state["nodes"]["worker3"]["not_ready"] = True
    state_path.write_text(json.dumps(state))
    try:
        upgrade_to(lab, runner, NEW)
    except LabRunError as error:
        message = str(error)
    else:
        raise AssertionError("the gates let a NotReady node through")
    assert "GATE FAILED: nodes: worker3 is NotReady" in message
    assert all(not n.calls_matching("kubeadm", "upgrade") for n in nodes)
    assert lab.cluster()["kubernetes_version"] == f"v{OLD}"
