"""SSH lab, scenarios 5, 7 and 8 (and apt retrying): a held dpkg lock, a late SSH server,
a host key that is not the pinned one, a transient apt failure."""
import socket

import pytest

from lab.fixtures import lab_marks, runner_for, up
from lab.nodes import KeyPair
from lab.runner import LabRunError

pytestmark = lab_marks


def run_of(runner, resource):
    return next(r for r in runner.transcript if r.resource == resource)


def test_a_held_dpkg_lock_is_waited_out(lab):
    (cp,) = lab.start(["cp1"])
    cp.hold_dpkg_lock(3)
    runner = runner_for(lab)
    up(lab, runner)

    assert "dpkg_lock=held" in run_of(runner, "cp1-preflight").stdout  # preflight saw it
    assert "waiting for the dpkg lock" in run_of(runner, "cp1-prepare").stdout
    first_apt = cp.calls("apt-get")[0]
    assert first_apt.time > cp.dpkg_lock_released_at()  # nothing ran apt under the lock
    assert len(cp.calls_matching("kubeadm", "init")) == 1


def test_an_apt_failure_is_retried(lab):
    (cp,) = lab.start(["cp1"])
    cp.fault("apt-get-update", fail=1, status=100,
             message="E: Failed to fetch http://archive.ubuntu.com/ubuntu/dists/jammy/InRelease")
    runner = runner_for(lab)
    up(lab, runner)
    prepare = run_of(runner, "cp1-prepare")
    assert "apt-get update failed (attempt 1 of 5); retrying" in prepare.stdout
    assert "E: Failed to fetch" in prepare.stderr
    assert cp.packages().get("kubeadm")


def test_an_ssh_server_that_comes_up_late_is_retried_then_used(lab):
    (cp,) = lab.start(["cp1"], sshd_delay=2)
    try:  # the premise: nobody listens yet
        socket.create_connection((cp.address, cp.port), timeout=1).close()
        raise AssertionError("sshd of cp1 was already listening")
    except ConnectionRefusedError:
        pass
    runner = runner_for(lab)
    up(lab, runner)
    first = runner.transcript[0]
    assert first.node == "cp1" and first.dial_attempts > 1
    assert all(r.exit_status == 0 for r in runner.transcript)
    assert len(cp.calls_matching("kubeadm", "init")) == 1


def test_a_host_key_other_than_the_pinned_one_is_refused(lab):
    cp, worker1 = lab.start(["cp1", "worker1"])
    impostor = KeyPair.generate().public_line
    runner = runner_for(lab)
    try:
        up(lab, runner, host_keys={"worker1": impostor})
    except LabRunError as error:
        failure = error
    else:
        raise AssertionError("a node with the wrong host key was used")
    assert [(f.resource, f.node, f.host) for f in failure.failures] == \
        [("worker1-preflight", "worker1", worker1.address)]
    assert "host key mismatch" in str(failure)
    assert worker1.calls() == []  # nothing ran there
    # The preflight gate holds every node back: nothing changed on the control plane either.
    assert cp.calls("apt-get") == [] and cp.packages().get("kubeadm") is None

    # With the right key pinned, the same nodes are used.
    up(lab, runner)
    assert sorted(lab.cluster()["nodes"]) == ["cp1", "worker1"]


def test_a_kubeadm_init_that_stopped_half_way_is_reset_and_run_again(lab):
    # The first run's init stops in its kubeconfig phase: the stand-in has written the
    # certificates (as kubeadm's certs phase does) but no admin.conf, and the API server
    # knows nothing. Whether the re-run copes is the program's doing: it must reset.
    (cp,) = lab.start(["cp1"])
    cp.fault("kubeadm-init-kubeconfig", fail=1, message="error execution phase kubeconfig/admin: lab fault")
    runner = runner_for(lab)
    with pytest.raises(LabRunError):
        up(lab, runner)
    assert cp.exists("/etc/kubernetes/pki/ca.crt") and not cp.exists("/etc/kubernetes/admin.conf")
    assert lab.cluster().get("endpoint") is None
    up(lab, runner)
    assert any("earlier kubeadm init stopped half-way" in r.stdout for r in runner.last_run)
    reset = cp.calls_matching("kubeadm", "reset")[0]
    assert reset.time < cp.calls_matching("kubeadm", "init")[-1].time
    assert cp.exists("/etc/kubernetes/admin.conf")
    assert lab.cluster()["control_plane_host"] == "cp1"


def test_a_kubeadm_init_that_timed_out_waiting_for_the_control_plane_is_run_again(lab):
    # kubeadm writes admin.conf and the static-pod manifests before it waits for the
    # API server; an init that times out there leaves both, and no cluster. The
    # re-run must not take those files for a finished init.
    (cp,) = lab.start(["cp1"])
    cp.fault("kubeadm-init-wait-control-plane", fail=1,
             message="[wait-control-plane] timed out waiting for the condition")
    runner = runner_for(lab)
    with pytest.raises(LabRunError):
        up(lab, runner)
    assert cp.exists("/etc/kubernetes/admin.conf")
    assert cp.exists("/etc/kubernetes/manifests/kube-apiserver.yaml")
    assert lab.cluster().get("endpoint") is None
    up(lab, runner)
    assert any("earlier kubeadm init stopped half-way" in r.stdout for r in runner.last_run)
    assert lab.cluster()["control_plane_host"] == "cp1"
    assert cp.exists("/etc/kubernetes/kserve-cluster-init.finished")
    assert not cp.exists("/etc/kubernetes/kserve-cluster-init.started")


def test_a_kubeadm_join_that_stopped_half_way_is_reset_and_run_again(lab):
    # The join stops in kubelet-start after writing the cluster CA (the kubelet never
    # came up): what a real kubeadm join leaves. The re-run must reset first, or
    # kubeadm's preflight refuses the CA file.
    cp, worker1 = lab.start(["cp1", "worker1"])
    worker1.fault("kubeadm-join-kubelet-start", fail=1,
                  message="[kubelet-check] The kubelet is not healthy after 4m0s")
    runner = runner_for(lab)
    with pytest.raises(LabRunError):
        up(lab, runner)
    assert worker1.exists("/etc/kubernetes/pki/ca.crt")
    assert not worker1.exists("/etc/kubernetes/kubelet.conf")
    assert not worker1.exists("/etc/kubernetes/bootstrap-kubelet.conf")
    assert "worker1" not in lab.cluster()["nodes"]
    up(lab, runner)
    assert any("earlier kubeadm join stopped half-way" in r.stdout for r in runner.last_run)
    assert worker1.calls_matching("kubeadm", "reset")[0].time < \
        worker1.calls_matching("kubeadm", "join")[-1].time
    assert "worker1" in lab.cluster()["nodes"]
