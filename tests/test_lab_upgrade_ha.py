"""SSH lab: three control planes and a worker (kubernetes.highAvailability, real etcd
members, keepalived/haproxy stood in) upgraded 1.31 -> 1.32 by the program: the first
control plane runs `kubeadm upgrade apply`, the other two `kubeadm upgrade node` one
at a time after it, then the worker; every kubectl call of the upgrade goes through
the virtual IP, the etcd members stay, and an ordinary `up` afterwards runs nothing."""
import json
import threading

from components import versions
from lab import etcd
from lab.fixtures import lab_marks
from lab.runner import LabRunError, layers_first
from test_lab_ha import (VIP, bring_up_three, kubectl, members, release, run_script,  # noqa: F401
                         snapshot_times, vrrp)
from test_lab_upgrade import move_repository, refused

pytestmark = lab_marks

CONTROL_PLANES = ["cp1", "cp2", "cp3"]
OLD = versions.TRAINS["1.31"].kubernetes_version
NEW = versions.TRAINS["1.32"].kubernetes_version


def api_server_image(node) -> str:
    return node.read("/etc/kubernetes/manifests/kube-apiserver.yaml").split(
        "registry.k8s.io/kube-apiserver:")[1].split()[0]


class ApiPoller(threading.Thread):
    """`kubectl get nodes` through the virtual IP (cp3's admin.conf), over and over
    while the upgrade runs: every answer is kept, with the control planes whose
    kube-apiserver pod was being replaced just before it was asked."""

    def __init__(self, node):
        super().__init__(daemon=True)
        self.node, self.results, self.stopping = node, [], threading.Event()

    def run(self):
        while not self.stopping.is_set():
            restarting = sorted(n for n, v in self.node.lab.cluster()["nodes"].items()
                                if v.get("api_server_restarting"))
            result = kubectl(self.node, "get nodes", check=False)
            self.results.append((result.returncode, result.stderr.strip(), restarting))
            self.stopping.wait(0.3)

    def stop(self):
        self.stopping.set()
        self.join()
        return self.results


def test_three_control_planes_upgrade_in_kubeadm_order_behind_the_virtual_ip(lab, release):
    (cp1, cp2, cp3, worker), runner, config = bring_up_three(lab)
    nodes = {"cp1": cp1, "cp2": cp2, "cp3": cp3, "worker1": worker}
    assert {api_server_image(n) for n in (cp1, cp2, cp3)} == {f"v{OLD}"}
    # An ordinary up touches no version.
    runner.up(config, lab.key.private_openssh)
    assert runner.last_run == []

    snapshots = snapshot_times(cp1)
    config["kubernetes"]["version"] = NEW
    for node in (cp1, cp2, cp3):  # each API server away for 3 s while kubeadm replaces it
        node.fault("kube-apiserver-restart", delay=3)
    layers_first(runner, NEW, lambda: runner.up(config, lab.key.private_openssh))
    poller = ApiPoller(cp3)
    poller.start()
    try:
        runner.up(config, lab.key.private_openssh)
    finally:
        answers = poller.stop()
    # The API answered through the virtual IP throughout, also while the API server
    # of the control plane that holds it (cp1) was being replaced.
    assert [a for a in answers if a[0] != 0] == []
    assert {"cp1", "cp2", "cp3"} <= {n for a in answers for n in a[2]}, answers

    cluster = lab.cluster()
    assert cluster["kubernetes_version"] == f"v{NEW}"
    assert {n: node["kubelet_version"] for n, node in cluster["nodes"].items()} == \
        {n: f"v{NEW}" for n in nodes}
    assert {api_server_image(n) for n in (cp1, cp2, cp3)} == {f"v{NEW}"}
    assert not any(node.get("cordoned") for node in cluster["nodes"].values())

    # kubeadm's order: apply on the first control plane only, `upgrade node` on the
    # others one at a time after it, then the worker.
    assert len(cp1.calls_matching("kubeadm", "upgrade", "apply")) == 1
    assert not cp1.calls_matching("kubeadm", "upgrade", "node")
    for name in ("cp2", "cp3", "worker1"):
        assert not nodes[name].calls_matching("kubeadm", "upgrade", "apply"), name
        assert len(nodes[name].calls_matching("kubeadm", "upgrade", "node")) == 1, name
    apply = cp1.calls_matching("kubeadm", "upgrade", "apply")[0].time
    upgraded = {n: nodes[n].calls_matching("kubeadm", "upgrade", "node")[0].time
                for n in ("cp2", "cp3", "worker1")}
    drains = {n: nodes[n].calls_matching("kubectl", "drain", n)[0].time for n in nodes}
    uncordons = {n: nodes[n].calls_matching("kubectl", "uncordon", n)[0].time for n in nodes}
    assert apply < drains["cp1"] < uncordons["cp1"] < upgraded["cp2"] < drains["cp2"] \
        < uncordons["cp2"] < upgraded["cp3"] < drains["cp3"] < uncordons["cp3"] \
        < upgraded["worker1"] < drains["worker1"] < uncordons["worker1"]

    # Every node drained and uncordoned itself with the admin kubeconfig, whose
    # server is the virtual IP.
    assert cluster["endpoint"] == f"{VIP}:8443"
    assert vrrp(cp2, "owner", VIP) == "cp1"
    assert "worker1" in kubectl(cp3, "get nodes").stdout
    # Every control plane's API server is read (its mirror pod), each at the target.
    listed = run_script(cp1, "upgrade-versions.sh", {})
    assert listed.returncode == 0, listed.stderr
    assert [line for line in listed.stdout.splitlines() if line.startswith("api_server_of=")] == \
        [f"api_server_of={n} {NEW}" for n in CONTROL_PLANES]
    # The gates took a real etcd snapshot first; the members were not disturbed.
    assert len(snapshot_times(cp1)) == len(snapshots) + 1
    for node in (cp1, cp2, cp3):
        assert members(node) == CONTROL_PLANES
    etcd.etcdctl(cp3, "put", "/lab/after-upgrade", "yes")

    # An ordinary up afterwards runs nothing.
    runner.up(config, lab.key.private_openssh)
    assert runner.last_run == []


def test_a_failure_on_the_third_control_plane_then_a_rerun_resumes_there(lab, release):
    (cp1, cp2, cp3, worker), runner, config = bring_up_three(lab)
    cp3.fault("kubeadm-upgrade", fail=1, message="[upgrade] lab: injected failure")
    config["kubernetes"]["version"] = NEW
    layers_first(runner, NEW, lambda: runner.up(config, lab.key.private_openssh))
    try:
        runner.up(config, lab.key.private_openssh)
    except LabRunError as error:
        assert "cp3-upgrade" in str(error) and "injected failure" in str(error)
    else:
        raise AssertionError("the planted failure did not stop the run")
    assert api_server_image(cp2) == f"v{NEW}" and api_server_image(cp3) == f"v{OLD}"
    assert not worker.calls_matching("kubeadm", "upgrade")
    finished = {n.name: len(n.calls()) for n in (cp1, cp2)}

    runner.up(config, lab.key.private_openssh)
    # cp1 and cp2 are never redone (not one stand-in call on them); cp3 resumes.
    assert {n.name: len(n.calls()) for n in (cp1, cp2)} == finished
    assert len(cp3.calls_matching("kubeadm", "upgrade", "node")) == 2  # failed, then done
    assert api_server_image(cp3) == f"v{NEW}"
    assert {n: node["kubelet_version"] for n, node in lab.cluster()["nodes"].items()} == \
        {n: f"v{NEW}" for n in ("cp1", "cp2", "cp3", "worker1")}
    for node in (cp1, cp2, cp3):
        assert members(node) == CONTROL_PLANES


def test_one_cluster_three_checks_backends_gates_and_an_early_upgrade_node(lab, release):
    """Three checks on one three-control-plane cluster (one bring-up: the slowest part).
    1. The lab's side of "the API answers throughout": while kubeadm replaces a control
       plane's kube-apiserver pod, haproxy has no ready backend there; with all three
       away, nothing answers through the virtual IP; with one back, it answers.
    2. The gates' "nothing to upgrade" needs every kube-apiserver at the target, not
       only the first control plane's: one left behind means the gates and the
       snapshot run.
    3. Negative control: kubeadm's `upgrade node` moves a control plane's static pods
       to the cluster's kubernetesVersion (app/cmd/phases/upgrade/node/controlplane.go),
       which only `upgrade apply` raises: run first on cp2 it leaves it at the old
       version, and cp2's newer kubelet is then refused."""
    (cp1, cp2, cp3, worker), _, _ = bring_up_three(lab)
    path = lab.dir / "cluster" / "cluster.json"

    def restarting(*names):
        state = json.loads(path.read_text())
        for name, node in state["nodes"].items():
            node["api_server_restarting"] = name in names
        path.write_text(json.dumps(state))

    restarting("cp1", "cp2", "cp3")
    away = kubectl(cp3, "get nodes", check=False)
    assert away.returncode == 1 and "no API server ready" in away.stderr
    restarting("cp1", "cp2")
    assert "worker1" in kubectl(cp3, "get nodes").stdout
    assert vrrp(cp3, "owner", VIP) == "cp1"  # its haproxy still has a ready backend
    restarting()  # every API server back

    done = run_script(cp1, "upgrade-gates.sh", {"TARGET_VERSION": OLD})
    assert done.returncode == 0 and "nothing to upgrade" in done.stdout, done.stderr
    path = lab.dir / "cluster" / "cluster.json"
    state = json.loads(path.read_text())
    state["nodes"]["cp3"]["api_server"] = "v1.31.2"
    path.write_text(json.dumps(state))
    snapshots = snapshot_times(cp1)
    gated = run_script(cp1, "upgrade-gates.sh", {"TARGET_VERSION": OLD})
    assert gated.returncode == 0, gated.stderr
    assert "gates passed, snapshot taken" in gated.stdout + gated.stderr
    assert len(snapshot_times(cp1)) == len(snapshots) + 1
    listed = run_script(cp1, "upgrade-versions.sh", {}).stdout
    assert "api_server_of=cp3 1.31.2" in listed and f"api_server_of=cp1 {OLD}" in listed

    package = versions.kubernetes_package_version
    move_repository(cp2, "1.32")
    cp2.run(f"apt-get install -y -qq --allow-change-held-packages kubeadm={package(NEW)} >/dev/null")
    early = cp2.run("kubeadm upgrade node")
    assert f'to version "v{OLD}"' in early.stdout
    assert api_server_image(cp2) == f"v{OLD}"
    cp2.run(f"apt-get install -y -qq --allow-change-held-packages kubelet={package(NEW)} >/dev/null")
    refused(cp2, "systemctl restart kubelet", f"the kubelet v{NEW} is newer than the API server v{OLD}")
    assert lab.cluster()["kubernetes_version"] == f"v{OLD}"
    assert lab.cluster()["nodes"]["cp2"]["kubelet_version"] == f"v{OLD}"
    for node in (cp1, cp2, cp3):
        assert members(node) == CONTROL_PLANES
