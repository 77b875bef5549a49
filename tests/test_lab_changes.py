"""SSH lab, scenarios 4 and 6: a worker added and removed later; a step failing on one worker."""
from lab.fixtures import lab_marks, runner_for, up
from lab.runner import LabRunError

pytestmark = lab_marks

NAMES = ["cp1", "worker1", "worker2"]


def test_a_worker_added_later_joins_and_nothing_reruns_elsewhere(lab):
    cp, worker1, worker2, worker3 = lab.start(NAMES + ["worker3"])
    runner = runner_for(lab)
    up(lab, runner, NAMES)
    assert worker3.calls() == []  # not in the stack yet: untouched
    others = (cp, worker1, worker2)
    before = {n.name: n.snapshot() for n in others}
    calls_before = {n.name: len(n.calls()) for n in others}

    up(lab, runner, NAMES + ["worker3"])

    ran = {r.resource for r in runner.last_run}
    assert {"worker3-prepare", "worker3-join-token", "worker3-kubeadm-join", "worker3-membership"} <= ran
    # Besides the new worker's own steps, only the read-only readiness wait runs
    # again (its node list changed).
    assert ran - {r for r in ran if r.startswith("worker3-")} <= {"nodes-ready"}
    assert lab.cluster()["nodes"]["worker3"]["host"] == "worker3"
    assert len(cp.calls_matching("kubeadm", "init")) == 1
    for node in others:
        assert node.snapshot() == before[node.name], node.name
    for worker in (worker1, worker2):
        assert len(worker.calls()) == calls_before[worker.name], worker.name
    new_on_cp = {c.tool + " " + c.args[0] for c in cp.calls()[calls_before["cp1"]:]}
    assert new_on_cp <= {"kubeadm token", "kubectl --kubeconfig"}, new_on_cp

    # Removed again: drained and deleted from the cluster first, then reset.
    up(lab, runner, NAMES)
    deletes = [r.resource for r in runner.last_run if r.phase == "delete"]
    assert deletes == ["worker3-membership", "worker3-reset"]
    assert {r.resource for r in runner.last_run if r.phase != "delete"} <= {"nodes-ready"}
    drain = cp.calls_matching("kubectl", "drain", "worker3")
    assert len(drain) == 1 and drain[0].time < worker3.calls_matching("kubeadm", "reset")[0].time
    assert "worker3" not in lab.cluster()["nodes"]
    assert not worker3.exists("/etc/kubernetes/kubelet.conf")
    assert sorted(lab.cluster()["nodes"]) == NAMES


def test_a_failing_step_on_one_worker_names_it_and_a_rerun_completes(lab):
    cp, worker1, worker2 = lab.start(NAMES)
    # Planted inside the join, after kubeadm has written the cluster CA: the kubelet
    # never comes up, as on a node whose kubelet crash-loops.
    worker2.fault("kubeadm-join-kubelet-start", fail="always",
                  message="[kubelet-check] The kubelet is not healthy after 4m0s")
    runner = runner_for(lab)
    try:
        up(lab, runner)
    except LabRunError as error:
        failure = error
    else:
        raise AssertionError("the run succeeded despite the failing join on worker2")
    message = str(failure)
    assert "worker2-kubeadm-join" in message and "worker2" in message and worker2.address in message
    assert "kubeadm join failed on worker2" in message  # the script's own explanation
    assert [f.resource for f in failure.failures] == ["worker2-kubeadm-join"]
    # worker2 is not a member, and the bootstrap token does not stay on disk (the
    # script removes its JoinConfiguration whatever kubeadm did); kubeadm left its CA.
    assert "worker2" not in lab.cluster()["nodes"]
    assert not worker2.exists("/etc/kubernetes/kubelet.conf")
    assert not worker2.exists("/etc/kubernetes/kubeadm-join.yaml")
    for token in lab.cluster()["tokens"]:
        assert worker2.private_files_containing(token["secret"]) == []
    assert worker2.exists("/etc/kubernetes/pki/ca.crt")
    # The other nodes are unaffected.
    assert len(cp.calls_matching("kubeadm", "init")) == 1
    assert cp.calls_matching("kubeadm", "reset") == [] and worker1.calls_matching("kubeadm", "reset") == []

    worker2.clear_faults()
    up(lab, runner)
    ran = {r.resource for r in runner.last_run}
    assert "worker2-kubeadm-join" in ran
    assert not ran & {"cp1-prepare", "worker1-prepare", "worker2-prepare", "cp1-kubeadm-init"}
    assert sorted(lab.cluster()["nodes"]) == NAMES
    assert len(cp.calls_matching("kubeadm", "init")) == 1
    assert len(worker1.calls_matching("kubeadm", "join")) == 1
    assert len(worker2.calls_matching("kubeadm", "join")) == 2  # the failed one, then the good one
    # The half-joined node was reset before the second join (else kubeadm refuses its CA).
    assert worker2.calls_matching("kubeadm", "reset")[0].time < worker2.calls_matching("kubeadm", "join")[-1].time


def test_preflight_is_not_run_again_on_nodes_the_stack_already_runs(lab):
    # A change that alters the preflight step's inputs (here the ingress node port
    # it checks) must not re-run it: on a built node it would find this stack's own
    # cluster and call it leftovers. ignore_changes keeps it as it was.
    lab.start(["cp1", "worker1"])
    runner = runner_for(lab)
    up(lab, runner)
    config = lab.stack_config()
    config["serving"] = {"ingressNodePort": 30080}
    runner.last_run = []
    runner.up(config, lab.key.private_openssh)
    rerun = {r.resource for r in runner.last_run}
    assert not {"cp1-preflight", "worker1-preflight"} & rerun, rerun
    assert lab.nodes["cp1"].exists("/etc/kubernetes/admin.conf")  # the cluster is there, untouched


def test_an_unreachable_worker_dropped_from_the_stack_is_removed_with_a_warning(lab):
    """A worker that is gone for good (its machine stopped: nothing answers at its
    address) and removed from the stack: the control plane drains and deletes its
    Node, its reset gives up after a bounded number of dials with a WARNING, and
    `up` succeeds, once and for all (the next run has nothing left to delete)."""
    cp, worker1, worker2 = lab.start(NAMES)
    runner = runner_for(lab)
    up(lab, runner)
    assert "worker2" in lab.cluster()["nodes"]
    worker2.stop()

    up(lab, runner, ["cp1", "worker1"])
    deletes = [r for r in runner.last_run if r.phase == "delete"]
    assert [r.resource for r in deletes] == ["worker2-membership", "worker2-reset"]
    membership, reset = deletes
    assert membership.node == "cp1" and membership.exit_status == 0
    assert reset.node == "local" and reset.exit_status == 0
    assert f"WARNING: worker2 ({worker2.address}) did not answer 3 SSH attempts and was not reset" \
        in reset.stderr
    assert "SSH connection refused" in reset.stderr
    assert "PRIVATE KEY" not in reset.stderr + reset.stdout
    assert cp.calls_matching("kubectl", "drain", "worker2")
    assert "worker2" not in lab.cluster()["nodes"]
    assert sorted(lab.cluster()["nodes"]) == ["cp1", "worker1"]
    assert worker1.calls_matching("kubeadm", "reset") == []
    assert not any(name.startswith("worker2-") for _, name in runner.state)

    up(lab, runner, ["cp1", "worker1"])
    assert [r for r in runner.last_run if r.phase == "delete"] == []


def test_a_reachable_worker_dropped_from_the_stack_is_reset_from_this_machine(lab):
    cp, worker1, worker2 = lab.start(NAMES)
    runner = runner_for(lab)
    up(lab, runner)
    up(lab, runner, ["cp1", "worker1"])
    [reset] = [r for r in runner.last_run if r.phase == "delete" and r.resource == "worker2-reset"]
    assert reset.exit_status == 0 and "WARNING" not in reset.stderr and "worker2: reset" in reset.stderr
    [kubeadm_reset] = worker2.calls_matching("kubeadm", "reset")
    assert kubeadm_reset.time > cp.calls_matching("kubectl", "drain", "worker2")[0].time
    assert not worker2.exists("/etc/kubernetes/kubelet.conf")
