"""SSH lab: a running cluster upgraded 1.31 -> 1.32 -> 1.33 in kubeadm's order, a
failure in the middle of the workers then a re-run that resumes, and the gates
refusing a NotReady node. The stand-ins refuse what the real tools refuse (a
skipped minor, a kubeadm older than its target, a kubelet newer than the API
server, a package from another minor's repository)."""
import json

from components import versions
from lab.fixtures import lab_marks, runner_for, up
from lab.runner import LabRunError, layers_first

pytestmark = lab_marks

NAMES = ["cp1", "worker1", "worker2", "worker3"]
WORKERS = NAMES[1:]
OLD = versions.TRAINS["1.31"].kubernetes_version
NEW = versions.TRAINS["1.32"].kubernetes_version
NEWER = versions.TRAINS["1.33"].kubernetes_version


def upgrade_to(lab, runner, version, **upgrade):
    """The `up` in which the nodes move to `version` (after the layer runs it needs)."""
    config = lab.stack_config(NAMES)
    config["kubernetes"] = {"version": version}
    if upgrade:
        config["upgrade"] = upgrade
    layers_first(runner, version, lambda: runner.up(config, lab.key.private_openssh))
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

    # An ordinary up after the upgrade runs none of its commands again (the
    # replaced commands are the state's, as in the engine).
    upgrade_to(lab, runner, NEW)
    assert not [r.resource for r in runner.last_run if "upgrade" in r.resource]

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
    cp, worker1, worker2, worker3 = nodes
    worker2.fault("kubeadm-upgrade", fail=1, message="[upgrade] lab: injected failure")
    try:
        upgrade_to(lab, runner, NEW)
    except LabRunError as error:
        assert "worker2-upgrade" in str(error) and "injected failure" in str(error)
    else:
        raise AssertionError("the planted failure did not stop the run")
    assert kubelet_versions(lab) == {"cp1": f"v{NEW}", "worker1": f"v{NEW}",
                                     "worker2": f"v{OLD}", "worker3": f"v{OLD}"}
    assert not worker3.calls_matching("kubeadm", "upgrade")
    assert not worker3.calls_matching("kubectl", "drain")  # the next batch never started
    assert not any(n.get("cordoned") for n in lab.cluster()["nodes"].values())
    finished = {n.name: len(n.calls()) for n in (cp, worker1)}

    upgrade_to(lab, runner, NEW)
    assert set(kubelet_versions(lab).values()) == {f"v{NEW}"}
    # Finished nodes are never redone: not one stand-in call on them in the re-run.
    assert {n.name: len(n.calls()) for n in (cp, worker1)} == finished
    assert len(cp.calls_matching("kubeadm", "apply")) == 1
    assert len(worker2.calls_matching("kubeadm", "upgrade", "node")) == 2  # failed, then done
    assert len(worker3.calls_matching("kubeadm", "upgrade", "node")) == 1


def test_a_node_stopped_after_its_kubelet_restart_is_only_uncordoned_on_the_rerun(lab):
    """Each node's observed version decides what is left: a worker whose kubelet
    already runs the target, still cordoned by the upgrade, is waited for and
    uncordoned; its packages, kubeadm and drain are not done again."""
    nodes, runner = built(lab)
    worker2 = nodes[2]
    worker2.fault("kubectl-wait", fail=1, message="error: timed out waiting for the condition")
    try:
        upgrade_to(lab, runner, NEW)
    except LabRunError as error:
        assert "worker2-upgrade" in str(error) and "stays cordoned" in str(error)
    else:
        raise AssertionError("the planted failure did not stop the run")
    assert kubelet_versions(lab)["worker2"] == f"v{NEW}"
    assert lab.cluster()["nodes"]["worker2"].get("cordoned")
    steps = {what: len(worker2.calls_matching(*what)) for what in (
        ("kubeadm", "upgrade", "node"), ("kubectl", "drain", "worker2"),
        ("systemctl", "restart", "kubelet"), ("apt-get", "install"), ("apt-get", "update"))}

    upgrade_to(lab, runner, NEW)
    assert {what: len(worker2.calls_matching(*what)) for what in steps} == steps
    assert not lab.cluster()["nodes"]["worker2"].get("cordoned")
    assert len(worker2.calls_matching("kubectl", "uncordon", "worker2")) == 1
    assert set(kubelet_versions(lab).values()) == {f"v{NEW}"}


def move_repository(node, minor):
    """What upgrade-node.sh's first step does: another minor's repository and key."""
    repo, keyring = versions.kubernetes_apt_repo(minor), "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
    node.run(f"curl -fsSL {repo}Release.key | gpg --dearmor --yes -o {keyring} && "
             f"echo 'deb [signed-by={keyring}] {repo} /' > /etc/apt/sources.list.d/kubernetes.list && "
             "apt-get update -qq >/dev/null")


def refused(node, command, *needles):
    result = node.run(command, check=False)
    assert result.returncode != 0, (command, result.stdout)
    for needle in needles:
        assert needle in result.stderr + result.stdout, (command, needle, result.stderr)


def test_the_stand_ins_refuse_what_the_real_tools_refuse_in_an_upgrade(lab):
    """Negative controls: the order the lab tests pass in is the only one the
    stand-ins accept."""
    nodes, _ = built(lab)
    cp, worker = nodes[0], nodes[1]
    package = versions.kubernetes_package_version
    # A kubeadm older than its target.
    refused(cp, f"kubeadm upgrade apply -y v{NEW}", f'"v{NEW}" is higher than the kubeadm version')
    # Another minor's packages are not in this minor's repository.
    refused(cp, f"apt-get install -y --allow-change-held-packages kubeadm={package(NEW)}",
            f"Version '{package(NEW)}' for 'kubeadm' was not found")
    # A skipped minor: kubeadm 1.33 on a 1.31 cluster.
    move_repository(cp, "1.33")
    cp.run(f"apt-get install -y -qq --allow-change-held-packages kubeadm={package(NEWER)} >/dev/null")
    refused(cp, f"kubeadm upgrade apply -y v{NEWER}", "kubeadm can upgrade only 1 minor version at a time")
    # A kubelet newer than the API server.
    move_repository(worker, "1.32")
    worker.run(f"apt-get install -y -qq --allow-change-held-packages kubelet={package(NEW)} >/dev/null")
    refused(worker, "systemctl restart kubelet", f"the kubelet v{NEW} is newer than the API server v{OLD}")
    assert lab.cluster()["kubernetes_version"] == f"v{OLD}"
    assert set(kubelet_versions(lab).values()) == {f"v{OLD}"}


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
