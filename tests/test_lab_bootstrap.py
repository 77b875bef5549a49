"""SSH lab, scenarios 1-3: a fresh lab stack, every step run twice, destroy and up again.

The program's remote commands run over SSH on emulated Ubuntu 22.04 nodes
(tests/lab); each test asserts what the nodes ended up with.
"""
import fnmatch
import tomllib

from components import versions
from lab.fixtures import lab_marks, runner_for, up

pytestmark = lab_marks

NAMES = ["cp1", "worker1", "worker2"]
K8S_PACKAGES = ("kubelet", "kubeadm", "kubectl")


def tokens(lab):
    return {f"{t['id']}.{t['secret']}": t for t in lab.cluster().get("tokens", [])}


def assert_prepared(node):
    config = tomllib.loads(node.read("/etc/containerd/config.toml"))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True, node.name
    assert cri["sandbox_image"] == versions.PAUSE_IMAGE, node.name
    packages = node.packages()
    pinned = versions.kubernetes_package_version(versions.KUBERNETES_VERSION)
    for package in K8S_PACKAGES:
        assert packages.get(package) == pinned, (node.name, package, packages)
    assert fnmatch.fnmatchcase(packages["containerd.io"], versions.CONTAINERD_PACKAGE_VERSION)
    assert node.held() >= {*K8S_PACKAGES, "containerd.io"}, node.name
    assert {"conntrack", "socat"} <= set(packages), node.name
    assert node.active_swaps() == [], node.name
    swap_lines = [line for line in node.read("/etc/fstab").splitlines() if " swap " in line.replace("\t", " ")]
    assert swap_lines and all(line.startswith("#") for line in swap_lines), swap_lines
    assert node.read("/etc/modules-load.d/kubernetes.conf").split() == ["overlay", "br_netfilter"]
    assert node.modules() >= {"overlay", "br_netfilter"}, node.name
    persisted = node.read("/etc/sysctl.d/99-kubernetes.conf")
    for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables",
                "net.ipv4.ip_forward"):
        assert key in persisted, (node.name, key)
        assert node.sysctl(key) == "1", (node.name, key)
    assert {"containerd", "kubelet"} <= node.services("enabled"), node.name
    assert {"containerd", "kubelet"} <= node.services("active"), node.name


def test_fresh_lab_stack_builds_the_cluster_on_three_nodes(lab):
    cp, worker1, worker2 = lab.start(NAMES)
    runner = runner_for(lab)
    evaluation = up(lab, runner)

    # The control plane was initialised once, and only the control plane.
    assert len(cp.calls_matching("kubeadm", "init")) == 1
    for worker in (worker1, worker2):
        assert worker.calls_matching("kubeadm", "init") == []
    cluster = lab.cluster()
    assert cluster["control_plane_host"] == "cp1"
    assert cluster["endpoint"] == f"{cp.address}:6443"
    assert cp.exists("/etc/kubernetes/manifests/kube-apiserver.yaml")
    login_copy = cp.path(f"/home/{lab.user}/.kube/config")
    assert login_copy.read_text() == cp.read("/etc/kubernetes/admin.conf")
    assert oct(login_copy.stat().st_mode & 0o777) == "0o600"
    # The admin kubeconfig travelled from the node into the Kubernetes provider.
    provider = evaluation.named("kubernetes")
    assert provider.inputs["kubeconfig"] == cp.read("/etc/kubernetes/admin.conf").rstrip("\n")

    # Each worker joined with a token the control plane issued for it alone.
    issued = tokens(lab)
    for worker in (worker1, worker2):
        record = cluster["nodes"][worker.name]
        assert record["host"] == worker.name and record["address"] == worker.address
        used = [t for t in issued.values() if t["id"] == record["token_id"]]
        assert [t["description"] for t in used] == [f"kserve-cluster: join {worker.name}"]
        assert len(worker.calls_matching("kubeadm", "join")) == 1
        assert worker.exists("/etc/kubernetes/kubelet.conf")
        assert not worker.exists("/etc/kubernetes/kubeadm-join.yaml")  # the token is not left behind
        creates = cp.calls_matching("kubeadm", "create", f"kserve-cluster: join {worker.name}")
        assert len(creates) == 1 and "--print-join-command" in creates[0].args

    for node in (cp, worker1, worker2):
        assert_prepared(node)
    # prepare says which runc the pinned containerd.io brought: one with the CVE fixes.
    prepared = {run.node: run.stdout for run in runner.last_run if run.resource.endswith("-prepare")}
    assert sorted(prepared) == sorted(NAMES)
    for name, stdout in prepared.items():
        assert "[prepare-node] runc version 1.3.3" in stdout.splitlines(), (name, stdout)

    # No SSH key or bootstrap token in plain text: node call logs, the node's own files,
    # the transcript and every output that is not secret.
    secrets = lab.key.body_lines() + list(issued)
    assert len(issued) == 3  # init's own token and one per worker
    secret_outputs = {r.name for r in evaluation.registrations if "stdout" in r.additional_secret_outputs}
    for node in (cp, worker1, worker2):
        log = node.read("/var/log/lab/calls.log")
        for secret in secrets:
            assert secret not in log, node.name
            assert node.private_files_containing(secret) == [], node.name
    for run in runner.transcript:
        for secret in secrets:
            assert secret not in run.stderr, run.resource
            assert secret not in run.stdout, run.resource
    for key, resource in runner.state.items():
        if resource.name in secret_outputs:
            continue
        for secret in secrets:
            assert secret not in str(resource.outputs.get("stdout", "")), resource.name
            assert secret not in str(resource.outputs.get("stderr", "")), resource.name
    for registration in evaluation.registrations:
        for secret in secrets:
            assert secret not in registration.plain, registration.name
    # kubeadm's own output names init's token: the script logs it redacted.
    init_run = next(r for r in runner.transcript if r.resource == "cp1-kubeadm-init")
    assert "<redacted-token>" in init_run.stdout


def test_every_create_command_run_again_changes_nothing(lab):
    nodes = lab.start(NAMES)
    runner = runner_for(lab)
    up(lab, runner)
    before = {n.name: n.snapshot() for n in nodes}
    cluster_nodes = lab.cluster()["nodes"]
    restarts = {n.name: n.restarts("containerd") for n in nodes}

    runner.rerun_creates()

    ran = {r.resource for r in runner.last_run}
    assert {"cp1-prepare", "cp1-kubeadm-init", "worker1-kubeadm-join", "nodes-ready"} <= ran
    assert all(r.exit_status == 0 for r in runner.last_run)
    for node in nodes:
        after = node.snapshot()
        changed = sorted(k for k in before[node.name].keys() | after.keys()
                         if before[node.name].get(k) != after.get(k))
        assert changed == [], (node.name, changed)
        assert node.restarts("containerd") == restarts[node.name], node.name
    assert len(nodes[0].calls_matching("kubeadm", "init")) == 1
    assert all(len(n.calls_matching("kubeadm", "join")) == 1 for n in nodes[1:])
    assert lab.cluster()["nodes"] == cluster_nodes

    # And a second `up` has nothing to do at all.
    up(lab, runner)
    assert runner.last_run == []


def test_destroy_cleans_every_node_workers_first_and_up_works_again(lab):
    cp, worker1, worker2 = nodes = lab.start(NAMES)
    runner = runner_for(lab)
    up(lab, runner)
    for node in nodes:  # what Calico leaves on every node
        node.run("mkdir -p /etc/cni/net.d /var/lib/calico && echo '{}' > /etc/cni/net.d/10-calico.conflist")

    runner.destroy()

    deletes = [(r.resource, r.node) for r in runner.last_run]
    # A worker's reset runs from this machine (scripts/reset_node.py), which logs in to it.
    assert sorted(deletes) == [("cp1-kubeadm-init", "cp1"), ("worker1-reset", "local"),
                               ("worker2-reset", "local")]
    assert all(r.exit_status == 0 for r in runner.last_run)
    assert cp.calls_matching("kubectl", "drain") == []  # the whole cluster goes: no drain
    cp_reset = cp.calls_matching("kubeadm", "reset")[-1].time
    for worker in (worker1, worker2):
        assert worker.calls_matching("kubeadm", "reset")[-1].time < cp_reset, worker.name
    for node in nodes:
        for leftover in ("/etc/kubernetes/admin.conf", "/etc/kubernetes/kubelet.conf",
                         "/etc/kubernetes/manifests/kube-apiserver.yaml", "/etc/kubernetes/pki/ca.crt",
                         "/etc/cni/net.d", "/var/lib/calico", f"/home/{lab.user}/.kube/config",
                         "/var/lib/kubelet/config.yaml"):
            assert not node.exists(leftover), (node.name, leftover)
        assert "kubelet" not in node.services("active"), node.name
        assert node.calls_matching("iptables", "-F"), node.name
        assert node.held() >= set(K8S_PACKAGES)  # packages stay for a quick rebuild
    assert lab.cluster() == {}
    assert runner.state == {}

    up(lab, runner)
    assert len(cp.calls_matching("kubeadm", "init")) == 2
    assert sorted(lab.cluster()["nodes"]) == NAMES
    for worker in (worker1, worker2):
        assert len(worker.calls_matching("kubeadm", "join")) == 2
