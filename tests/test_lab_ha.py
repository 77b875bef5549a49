"""SSH lab: the highly available control plane.

- The kubeadm stand-in's control-plane join: accepted only with the certificate key
  of the certificates uploaded last, within their two hours; refused otherwise,
  with kubeadm's own messages.
- Three control planes and a worker brought up by the program with
  kubernetes.highAvailability: real etcd members joining one at a time, a snapshot
  before each join, haproxy's and keepalived's configs checked by the real
  binaries, the worker joining through the virtual IP (whose owner the lab
  chooses as VRRP does: tests/lab/standins/impl.py, vrrp_owner).
"""
import json
from typing import Optional

import pytest
import yaml

from lab import etcd
from lab.fixtures import lab_marks, runner_for, up
from lab.nodes import ADDRESS_PREFIX, Lab
from components.cluster.node_scripts import render_command
from lab.runner import LabRunError, SshExecutor, lab_runner

pytestmark = lab_marks


def join_config(lab, token, key, name="worker1", address=None):
    cluster = lab.cluster()
    document = {
        "apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {"apiServerEndpoint": cluster["endpoint"], "token": token,
                                         "caCertHashes": [f"sha256:{cluster['ca_hash']}"]}},
        "nodeRegistration": {"name": name},
        "controlPlane": {"localAPIEndpoint": {"advertiseAddress": address or "10.0.0.1",
                                              "bindPort": 6443}},
    }
    if key is not None:
        document["controlPlane"]["certificateKey"] = key
    return yaml.safe_dump(document)


def join(node, config):
    return node.run("cat > /root/join.yaml && kubeadm join --config /root/join.yaml",
                    input=config, check=False)


def test_join_control_plane_needs_a_fresh_uploaded_certificate_key(lab):
    cp, second = lab.start(["cp1", "worker1"])
    up(lab, runner_for(lab))
    # worker1 leaves, to come back as a control plane.
    second.run("kubeadm reset -f")
    cp.run("kubectl --kubeconfig /etc/kubernetes/admin.conf delete node worker1")

    key = cp.run("kubeadm certs certificate-key").stdout.strip()
    assert len(key) == 64 and int(key, 16) >= 0
    line = cp.run(f"kubeadm token create --ttl 1h --print-join-command --certificate-key {key}").stdout
    assert line.rstrip().endswith(f"--control-plane --certificate-key {key}")
    token = line.split("--token ")[1].split()[0]

    # Nothing uploaded yet: the Secret is not there.
    missing = join(second, join_config(lab, token, key))
    assert missing.returncode == 1 and 'Secret "kubeadm-certs" was not found' in missing.stderr
    second.run("kubeadm reset -f")

    skipped = cp.run("kubeadm init phase upload-certs").stdout
    assert "Skipping phase" in skipped and "kubeadm_certs" not in lab.cluster()
    uploaded = cp.run(f"kubeadm init phase upload-certs --upload-certs --certificate-key {key}")
    assert uploaded.stdout.strip().endswith(key)

    # Another key cannot decrypt them; a malformed one is not hex; none at all needs local certs.
    other = "0" * 64
    wrong = join(second, join_config(lab, token, other))
    assert wrong.returncode == 1 and "message authentication failed" in wrong.stderr
    second.run("kubeadm reset -f")
    bad = join(second, join_config(lab, token, "not-hex"))
    assert bad.returncode == 1 and "encoding/hex" in bad.stderr
    second.run("kubeadm reset -f")
    none = join(second, join_config(lab, token, None))
    assert none.returncode == 1 and "/etc/kubernetes/pki/ca.crt" in none.stderr
    second.run("kubeadm reset -f")

    # Two hours later the Secret is gone.
    path = lab.dir / "cluster" / "cluster.json"
    state = json.loads(path.read_text())
    state["kubeadm_certs"]["expires"] -= 2 * 3600 + 1
    path.write_text(json.dumps(state))
    expired = join(second, join_config(lab, token, key))
    assert expired.returncode == 1 and "This Secret might have expired" in expired.stderr
    second.run("kubeadm reset -f")

    # Uploaded again under a fresh key: the join goes through as a control plane.
    fresh = cp.run("kubeadm certs certificate-key").stdout.strip()
    cp.run(f"kubeadm init phase upload-certs --upload-certs --certificate-key {fresh}")
    joined = join(second, join_config(lab, token, fresh, address=second.address))
    assert joined.returncode == 0, joined.stderr
    assert lab.cluster()["nodes"]["worker1"]["role"] == "control-plane"
    for path in ("/etc/kubernetes/admin.conf", "/etc/kubernetes/manifests/kube-apiserver.yaml",
                 "/etc/kubernetes/manifests/etcd.yaml", "/etc/kubernetes/pki/ca.key"):
        assert second.exists(path), path
    assert second.read("/etc/kubernetes/pki/ca.crt") == cp.read("/etc/kubernetes/pki/ca.crt")


# --- three control planes through the program ------------------------------------------

VIP = f"{ADDRESS_PREFIX}20"  # free: the lab's nodes start at .21
HA_SCRIPTS = frozenset({"ha-endpoint.sh", "control-plane-join-key.sh", "join-control-plane.sh",
                        "control-plane-change.sh", "etcd-snapshot.sh", "etcd-backup-install.sh"})
SNAPSHOTS = "/var/lib/kserve-cluster/etcd-snapshots"


def ha_runner(lab: Lab):
    return lab_runner(lab, executor=SshExecutor(dial_backoff=0.1, max_backoff=0.5),
                      also_run=HA_SCRIPTS)


def ha_config(lab: Lab, control_planes: list[str], workers: list[str],
              interface: Optional[str] = None) -> dict:
    """`interface`: the lab's empty bridge (keepalived refuses lo, the route the
    nodes' loopback addresses take to the virtual IP)."""
    config = lab.stack_config(control_planes + workers)
    for entry in config["nodes"]:
        entry["role"] = "control-plane" if entry["name"] in control_planes else "worker"
    config["kubernetes"] = {"highAvailability": {"virtualIP": VIP, "interface": interface or
                                                 lab.vrrp_interface()}}
    return config


def members(node) -> list[str]:
    listed = json.loads(etcd.etcdctl(node, "member", "list", "-w", "json").stdout)["members"]
    return sorted(m.get("name", "") for m in listed)


def vrrp(node, *args: str) -> str:
    standins = node.lab.dir / "standins"
    result = node.run(f"LAB_STANDINS={standins} {etcd._node_python(node)} {standins}/standin.py "
                      f"vrrp {' '.join(args)}", check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def kubectl(node, command: str, check: bool = True):
    return node.run(f"kubectl --kubeconfig /etc/kubernetes/admin.conf {command}", check=check)


def snapshot_times(node) -> list[str]:
    listing = node.run(f"ls {SNAPSHOTS}", check=False).stdout.split()
    return sorted(name for name in listing if name.endswith(".db"))


@pytest.fixture
def release(lab):
    """The lab serves the pinned etcd release (the snapshot timer's install) for the
    whole test: a later `up` then sees the same pins."""
    with etcd.lab_release(lab) as served:
        yield served


def bring_up_three(lab: Lab):
    nodes = lab.start(["cp1", "cp2", "cp3", "worker1"])
    runner = ha_runner(lab)
    config = ha_config(lab, ["cp1", "cp2", "cp3"], ["worker1"])
    runner.up(config, lab.key.private_openssh)
    return nodes, runner, config


def test_three_control_planes_join_one_at_a_time_then_shrink_one_per_run(lab, release):
    """Three control planes join behind the virtual IP; then 3 -> 1 is refused before any
    node, the quorum guard is checked against real etcd, and 3 -> 2 runs through the program."""
    (cp1, cp2, cp3, worker), runner, _ = bring_up_three(lab)
    # Three real etcd members, seen alike from each of them.
    for node in (cp1, cp2, cp3):
        assert members(node) == ["cp1", "cp2", "cp3"]
    nodes = lab.cluster()["nodes"]
    assert {n: nodes[n]["role"] for n in nodes} == {
        "cp1": "control-plane", "cp2": "control-plane", "cp3": "control-plane", "worker1": "worker"}
    assert lab.cluster()["endpoint"] == f"{VIP}:8443"

    # One at a time, each after a snapshot taken on the first control plane.
    runs = {r.resource: r for r in runner.transcript if r.phase == "create"}
    for name in ("cp2", "cp3"):
        snapshot = runs[f"{name}-snapshot-before-join"]
        assert snapshot.node == "cp1" and snapshot.exit_status == 0
        assert snapshot.finished <= runs[f"{name}-join-key"].started
        assert runs[f"{name}-join-key"].finished <= runs[f"{name}-kubeadm-join"].started
    assert runs["cp2-membership"].finished <= runs["cp3-snapshot-before-join"].started
    assert runs["cp3-membership"].finished <= runs["worker1-kubeadm-join"].started
    assert len(snapshot_times(cp1)) >= 2
    # The join key and token never reach the transcript.
    for name in ("cp2", "cp3"):
        assert runs[f"{name}-join-key"].stdout == "[secret]"

    # haproxy and keepalived on every control plane, configs passed by the real binaries.
    for node, priority in ((cp1, 150), (cp2, 140), (cp3, 130)):
        assert {"haproxy", "keepalived"} <= node.services("active"), node.name
        assert node.calls_matching("haproxy", "-c")
        conf = node.read("/etc/keepalived/keepalived.conf")
        assert f"priority {priority}" in conf and f"{VIP}/24" in conf
        assert "@INTERFACE@" not in conf
    assert "haproxy" not in worker.packages() and "keepalived" not in worker.packages()

    # The worker joined through the virtual IP, which the first control plane holds.
    assert f"https://{VIP}:8443" in worker.read("/etc/kubernetes/kubelet.conf")
    assert vrrp(cp1, "owner", VIP) == "cp1"
    assert "worker1" in kubectl(cp3, "get nodes").stdout

    # Then the count rules and the quorum guard on the same three members (one
    # bring-up for both: it is the slowest part of this file).

    # The lab runner hands the program its last up's outputs (the StackReference to
    # its own stack), so the count rules judge the change before any node is touched
    # (components/cluster/control_plane_change.py).
    # 3 -> 1: two at once, refused before any node is touched (cp1's keepalived and
    # haproxy included: the gate comes before them).
    one = ha_config(lab, ["cp1"], ["worker1"], interface=lab._interfaces[0])
    with pytest.raises(LabRunError) as refused:
        runner.up(one, lab.key.private_openssh)
    assert "removes 2 control planes in one run" in str(refused.value)
    assert runner.last_run == []
    assert members(cp1) == ["cp1", "cp2", "cp3"]
    assert {"cp2", "cp3"} <= set(lab.cluster()["nodes"])

    # The quorum guard against the real members: with cp2's member stopped, cp3 may
    # not leave (1 healthy of the 2 left); with it back, it may.
    etcd.stop(cp2)
    guard = run_script(cp1, "control-plane-change.sh", {"CONTROL_PLANES": "cp1 cp2"})
    assert guard.returncode == 1, guard.stdout
    assert "removing cp3 leaves 2 etcd members of which 1 are healthy; they need 2" in guard.stderr
    etcd.start(cp2)
    guard = run_script(cp1, "control-plane-change.sh", {"CONTROL_PLANES": "cp1 cp2"})
    assert guard.returncode == 0, guard.stderr
    assert "cp3 leaves: 2 healthy of the 2 etcd members left (quorum 2)" in guard.stdout

    # 3 -> 2 through the program: allowed as one step of a shrink, with a warning; cp3's
    # membership step on cp1 drains it, takes a snapshot and removes its etcd member,
    # then its reset runs from this machine.
    before = snapshot_times(cp1)
    two = ha_config(lab, ["cp1", "cp2"], ["worker1"], interface=lab._interfaces[0])
    runner.up(two, lab.key.private_openssh)
    deleted = [r.resource for r in runner.last_run if r.phase == "delete"]
    assert "cp3-membership" in deleted, deleted
    assert len(snapshot_times(cp1)) == len(before) + 1
    assert members(cp1) == ["cp1", "cp2"]
    assert "cp3" not in lab.cluster()["nodes"]


def run_script(node, script: str, env: dict[str, str]):
    """A node script run as the program runs it (sudo bash -c), here by hand."""
    return node.run(render_command(script, env), check=False, timeout=300)


def test_one_control_plane_down_the_api_answers_and_up_changes_nothing(lab, release):
    """cp1, which holds the virtual IP, goes down (its namespace stopped: sshd, etcd
    member, keepalived and haproxy with it): the address moves to cp2, the API
    answers through it, etcd keeps quorum, and an `up` with no change runs nothing."""
    (cp1, cp2, cp3, worker), runner, config = bring_up_three(lab)
    assert vrrp(cp2, "owner", VIP) == "cp1"
    cp1.stop()

    assert vrrp(cp2, "owner", VIP) == "cp2"
    listed = kubectl(cp3, "get nodes").stdout
    assert "cp1" in listed and "worker1" in listed
    health = etcd.etcdctl(cp2, *etcd.FAILING_FAST, "endpoint", "health", "--cluster", check=False)
    assert health.returncode != 0
    assert f"https://{cp1.address}:2379 is unhealthy" in health.stderr + health.stdout
    assert members(cp2) == ["cp1", "cp2", "cp3"]
    etcd.etcdctl(cp3, "put", "/lab/two-of-three", "yes")  # quorum: 2 of 3

    # The same stack again: no command runs, on any node; nothing is deleted.
    runner.up(config, lab.key.private_openssh)
    assert runner.last_run == []

    # cp2 down as well: no healthy check left anywhere, no quorum, no API.
    cp2.stop()
    assert vrrp(cp3, "owner", VIP) == "cp3"
    unreachable = kubectl(cp3, "get nodes", check=False)
    assert unreachable.returncode == 1 and "no API server ready" in unreachable.stderr
    assert etcd.etcdctl(cp3, *etcd.FAILING_FAST, "put", "/lab/one-of-three", "x", check=False).returncode != 0
