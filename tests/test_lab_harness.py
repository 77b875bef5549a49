"""The SSH lab itself: nodes are isolated Ubuntu machines, teardown leaves nothing,
and the stand-ins refuse what the real tools refuse."""
import os
import pwd
import socket
import uuid

import pytest
import yaml

from components import versions
from lab.fixtures import lab_marks, runner_for, up
from lab.nodes import Lab
from lab.runner import SshExecutor

pytestmark = lab_marks


def ssh(lab, node, command):
    connection = {"host": node.address, "port": node.port, "user": lab.user,
                  "privateKey": lab.key.private_openssh, "hostKey": node.host_key.public_line}
    status, stdout, stderr, _ = SshExecutor().run(connection, command, None)
    assert status == 0, stderr
    return stdout.splitlines()


K8S_REPO = "https://pkgs.k8s.io/core:/stable:/v1.31/deb/"
K8S_KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"


def add_kubernetes_repo(node, repo=K8S_REPO, keyring_from=None):
    """What prepare.sh does: the repository's key through curl and gpg, then its source."""
    node.run(f"install -d /etc/apt/keyrings && curl -fsSL {keyring_from or repo + 'Release.key'} "
             f"| gpg --dearmor --yes -o {K8S_KEYRING} && "
             f"echo 'deb [signed-by={K8S_KEYRING}] {repo} /' > /etc/apt/sources.list.d/kubernetes.list && "
             "apt-get update -qq >/dev/null")


def self_signed(common_name: str, organization: str) -> str:
    """client-certificate-data of a certificate no cluster CA signed."""
    import base64
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()


def refused(node, command, status, *needles, input=None):
    """Run `command` in the node; it must exit with `status` and say each needle."""
    result = node.run(command, check=False, input=input)
    assert result.returncode == status, (command, result.returncode, result.stdout, result.stderr)
    for needle in needles:
        assert needle in result.stderr, (command, needle, result.stderr)
    return result


def test_nodes_are_isolated_ubuntu_machines_with_a_sudo_user(lab):
    nodes = lab.start(["cp1", "worker1"])
    probe = f"lab-probe-{uuid.uuid4().hex}"
    seen = {}
    for node in nodes:
        seen[node.name] = ssh(lab, node, (
            ". /etc/os-release; hostname; echo $ID $VERSION_ID $VERSION_CODENAME; "
            "id -un; sudo -n id -u; sudo -n cat /sys/class/dmi/id/product_uuid; cat /etc/machine-id; "
            f"cat /sys/class/net/eth0/address; sudo -n touch /etc/{probe}-{node.name} "
            f"/var/{probe}-{node.name} /opt/{probe}-{node.name} /usr/local/{probe}-{node.name}"))
    for node in nodes:
        hostname, os_line, user, root_uid, product_uuid, machine_id, mac = seen[node.name]
        assert hostname == node.name
        assert os_line == "ubuntu 22.04 jammy"
        assert (user, root_uid) == (lab.user, "0")
        assert (product_uuid, machine_id, mac) == (node.product_uuid, node.machine_id, node.mac)
        other = next(n for n in nodes if n is not node)
        for directory in ("/etc", "/var", "/opt", "/usr/local"):
            assert node.exists(f"{directory}/{probe}-{node.name}")
            assert not other.exists(f"{directory}/{probe}-{node.name}")
            assert not os.path.exists(f"{directory}/{probe}-{node.name}")  # the host never sees it
    assert len({seen[n.name][4] for n in nodes}) == 2  # product_uuids differ
    with pytest.raises(KeyError):
        pwd.getpwnam(lab.user)  # the login user exists only inside the nodes


def test_installing_a_package_replaces_a_symlink_instead_of_writing_through_it(lab):
    # A host whose /usr/bin/kubectl links out of the node's overlays (a cloud SDK's
    # kubectl): the package's file must land in the node, the link's target untouched.
    (node,) = lab.start(["cp1"])
    victim = lab.dir / "cluster" / "victim"  # the shared directory: visible to the host
    victim.write_text("the host's own file\n")
    node.run("ln -sf /var/lib/lab-cluster/victim /usr/bin/kubectl")
    add_kubernetes_repo(node)
    node.run("apt-get install -y kubectl >/dev/null")
    assert victim.read_text() == "the host's own file\n"
    assert not node.path("/usr/bin/kubectl").is_symlink()
    assert "Stand-in for kubectl" in node.read("/usr/bin/kubectl")


def test_teardown_leaves_no_process_mount_or_file():
    with Lab() as lab:
        nodes = lab.start(["cp1", "worker1"])
        nodes[0].hold_dpkg_lock(60)
        pids = [n.pid for n in nodes]
        directory = lab.dir
    assert not directory.exists()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for node in nodes:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((node.address, node.port), timeout=1)
    assert str(directory) not in open("/proc/self/mounts").read()


def test_stand_ins_refuse_what_the_real_tools_refuse(lab):
    cp, worker = lab.start(["cp1", "worker1"])
    up(lab, runner_for(lab))

    again = cp.run("kubeadm init --config /etc/kubernetes/kubeadm-init.yaml", check=False)
    assert again.returncode == 1
    assert "[ERROR FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]" in again.stderr

    held = worker.run("apt-get -y install kubeadm=1.31.13-1.1", check=False)
    assert held.returncode == 100 and "--allow-change-held-packages" in held.stderr
    missing = worker.run("apt-get -y install 'kubeadm=9.9*'", check=False)
    assert missing.returncode == 100 and "Version '9.9*' for 'kubeadm' was not found" in missing.stderr

    endpoint = lab.cluster()["endpoint"]
    ca_hash = lab.cluster()["ca_hash"]
    config = ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n"
              "discovery:\n  bootstrapToken:\n"
              f"    apiServerEndpoint: '{endpoint}'\n    token: TOKEN\n"
              f"    caCertHashes: ['sha256:{ca_hash}']\n"
              "nodeRegistration:\n  name: worker1\n")
    joined = worker.run("cat > /root/join.yaml && kubeadm join --config /root/join.yaml",
                        input=config.replace("TOKEN", "abcdef.0123456789abcdef"), check=False)
    assert joined.returncode == 1 and "FileAvailable--etc-kubernetes-kubelet.conf" in joined.stderr

    # After a reset, a join needs a token the control plane knows ...
    worker.run("kubeadm reset -f")
    bogus = worker.run("cat > /root/join.yaml && kubeadm join --config /root/join.yaml",
                       input=config.replace("TOKEN", "abcdef.0123456789abcdef"), check=False)
    assert bogus.returncode == 1 and 'token ID "abcdef"' in bogus.stderr
    # ... and a node name that is free: kubeadm reset does not remove the Node object.
    line = cp.run("kubeadm token create --ttl 5m --print-join-command").stdout
    token = line.split("--token ")[1].split()[0]
    taken = worker.run("cat > /root/join.yaml && kubeadm join --config /root/join.yaml",
                       input=config.replace("TOKEN", token), check=False)
    assert taken.returncode == 1 and 'a Node with name "worker1"' in taken.stderr
    # That phase had written the CA: kubeadm's preflight refuses it until a reset.
    assert worker.exists("/etc/kubernetes/pki/ca.crt")
    assert not worker.exists("/etc/kubernetes/bootstrap-kubelet.conf")
    again = worker.run("kubeadm join --config /root/join.yaml", check=False)
    assert again.returncode == 1 and "FileAvailable--etc-kubernetes-pki-ca.crt" in again.stderr
    worker.run("kubeadm reset -f")
    cp.run("kubectl --kubeconfig /etc/kubernetes/admin.conf delete node worker1")
    worker.run("cat > /root/join.yaml && kubeadm join --config /root/join.yaml",
               input=config.replace("TOKEN", token))
    assert lab.cluster()["nodes"]["worker1"]["token_id"] == token.split(".")[0]


def test_stand_ins_refuse_unknown_flags_unserved_urls_and_keyrings_without_the_key(lab):
    (node,) = lab.start(["cp1"])
    # apt-get: unknown options, long and bundled short (apt-pkg/contrib/cmndline.cc).
    refused(node, "apt-get -y --tll install socat", 100,
            "E: Command line option --tll is not understood in combination with the other options")
    refused(node, "apt-get -yx install socat", 100,
            "E: Command line option 'x' [from -yx] is not understood in combination with the other options.")
    # curl: a host the lab does not serve does not resolve; -s hides the message, -S shows it.
    quiet = refused(node, "curl -fsL https://example.invalid/key", 6)
    assert quiet.stderr == ""
    refused(node, "curl -fsSL https://example.invalid/key", 6, "curl: (6) Could not resolve host: example.invalid")
    refused(node, "curl -o /dev/null -w '%{http_code}' https://example.invalid/", 6)
    # A path the served host does not have: 404, an error with -f; another minor's key too.
    refused(node, f"curl -fsS {K8S_REPO}nothing", 22, "curl: (22) The requested URL returned error: 404")
    # (the lab serves every train's repository; 1.30 has no train)
    assert "1.30" not in versions.TRAINS
    refused(node, "curl -fsS https://pkgs.k8s.io/core:/stable:/v1.30/deb/Release.key", 22, "error: 404")
    refused(node, "curl --tll https://pkgs.k8s.io/", 2, "curl: option --tll: is unknown")
    assert node.run(f"curl -s -o /dev/null -w '%{{http_code}}' {K8S_REPO}").stdout == "200"
    # apt: a keyring that does not hold the repository's key (present is not enough).
    node.run(f"install -d /etc/apt/keyrings && echo key > {K8S_KEYRING} && "
             f"echo 'deb [signed-by={K8S_KEYRING}] {K8S_REPO} /' > /etc/apt/sources.list.d/kubernetes.list")
    refused(node, "apt-get update", 100, "NO_PUBKEY",
            "E: The repository 'https://pkgs.k8s.io/core:/stable:/v1.31/deb InRelease' is not signed.")
    docker_key = refused(node, "curl -fsSL https://download.docker.com/linux/ubuntu/gpg | "
                         f"gpg --dearmor --yes -o {K8S_KEYRING} && apt-get update", 100, "is not signed")
    assert "NO_PUBKEY" in docker_key.stderr
    # A minor the lab does not serve: pkgs.k8s.io keeps one repository per minor, the lab
    # those of the release trains (another train's needs its own key: below).
    node.run(f"echo 'deb [signed-by={K8S_KEYRING}] https://pkgs.k8s.io/core:/stable:/v1.30/deb/ /' "
             "> /etc/apt/sources.list.d/kubernetes.list")
    refused(node, "apt-get update", 100, "v1.30/deb/ / Release' does not have a Release file")
    add_kubernetes_repo(node)  # the real key: accepted
    # Another train's repository is served, but signed with its own minor's key:
    # the 1.31 key installed just now does not open it.
    node.run(f"echo 'deb [signed-by={K8S_KEYRING}] https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /' "
             "> /etc/apt/sources.list.d/kubernetes.list")
    refused(node, "apt-get update", 100, "NO_PUBKEY", "v1.32/deb InRelease' is not signed.")
    add_kubernetes_repo(node)
    node.run("apt-get install -y -qq kubeadm cri-tools socat >/dev/null")
    # kubeadm and kubectl: pflag's unknown flag, with each tool's own error shape.
    misspelt = refused(node, "kubeadm token create --tll 1h --print-join-command", 1, "unknown flag: --tll",
                       "To see the stack trace of this error execute with --v=5 or higher")
    assert "kubeadm join" not in misspelt.stdout
    refused(node, "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes --no-header", 1,
            "error: unknown flag: --no-header", "See 'kubectl get --help' for usage.")
    refused(node, "kubectl drain cp1 -x", 1, "error: unknown shorthand flag: 'x' in -x")
    # kubeadm 1.31 deploys no control plane older than 1.30 (MinimumControlPlaneVersion).
    refused(node, "kubeadm config images pull --kubernetes-version v1.29.15", 1,
            "this version of kubeadm only supports deploying clusters with the control plane version "
            ">= 1.30.0. Current version: v1.29.15")
    # iptables, crictl, socat and kubelet: what they do not model is refused.
    node.run("iptables -t nat -F && iptables -t filter -X")
    refused(node, "iptables -t nat -Z", 2, 'unknown option "-Z"')
    refused(node, "iptables -t nope -F", 3, "can't initialize iptables table `nope'")
    refused(node, "iptables -A INPUT -j DROP", 2, 'unknown option "-A"')
    refused(node, "crictl exec", 3, "No help topic for 'exec'")
    refused(node, "crictl ps --tll", 1, "flag provided but not defined: --tll")
    refused(node, "crictl --tll", 1, "flag provided but not defined: --tll")
    refused(node, "socat TCP-LISTEN:80 TCP:10.0.0.1:80", 1, "socat is not emulated")
    refused(node, "kubelet --tll", 1, "unknown flag: --tll")
    assert node.run("kubelet --version").stdout.startswith("Kubernetes v1.31.")


def test_drain_identity_versions_and_the_pod_network_are_checked(lab):
    cp, worker = lab.start(["cp1", "worker1"])
    up(lab, runner_for(lab))
    admin = "kubectl --kubeconfig /etc/kubernetes/admin.conf"
    assert "worker1 Ready" in cp.run(f"{admin} get nodes --no-headers").stdout

    # Identity: a member's kubeconfig (CN alice, O team-a) may not drain or delete nodes.
    cp.run("kubeadm kubeconfig user --client-name alice --org team-a > /root/alice.conf")
    refused(cp, "kubectl --kubeconfig /root/alice.conf delete node worker1", 1,
            'Error from server (Forbidden): nodes "worker1" is forbidden: User "alice" cannot delete '
            'resource "nodes" in API group "" at the cluster scope')
    refused(cp, "kubectl --kubeconfig /root/alice.conf drain worker1 --ignore-daemonsets", 1,
            'User "alice" cannot patch resource "nodes"')
    # A certificate the cluster CA did not sign is no identity at all, whatever its O says.
    forged = yaml.safe_load(cp.read("/etc/kubernetes/admin.conf"))
    forged["users"][0]["user"]["client-certificate-data"] = self_signed("mallory", "system:masters")
    cp.path("/root/forged.conf").write_text(yaml.safe_dump(forged))
    refused(cp, "kubectl --kubeconfig /root/forged.conf delete node worker1", 1,
            "error: You must be logged in to the server (Unauthorized)")
    assert "worker1" in lab.cluster()["nodes"]

    # Drain: DaemonSet-managed pods refuse it without --ignore-daemonsets; a bare pod
    # on the node refuses it without --force; with both, the pod is evicted.
    worker.run("install -d /root/.kube")
    worker.path("/root/.kube/config").write_text(cp.read("/etc/kubernetes/admin.conf"))
    worker.run("kubectl apply -f -", input="apiVersion: v1\nkind: Pod\nmetadata: {name: bare, namespace: default}\n"
               "spec: {containers: [{name: c, image: busybox}]}\n")
    daemons = refused(cp, f"{admin} drain worker1", 1,
                      'error: unable to drain node "worker1" due to error:',
                      "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "
                      "calico-system/calico-node-", "kube-system/kube-proxy-",
                      "cannot delete Pods that declare no controller (use --force to override): default/bare")
    assert "node/worker1 cordoned" in daemons.stdout
    assert "default/bare" in lab.cluster()["pods"]
    drained = cp.run(f"{admin} drain worker1 --ignore-daemonsets --force --delete-emptydir-data --timeout 60s")
    assert "evicting pod default/bare" in drained.stdout and "node/worker1 drained" in drained.stdout
    assert "Warning: ignoring DaemonSet-managed Pods" in drained.stderr
    assert "default/bare" not in lab.cluster()["pods"]
    cp.run(f"{admin} uncordon worker1")

    # The pod network: Calico's pool outside kubeadm's podSubnet never makes a node Ready.
    pod_subnet = lab.cluster()["pod_subnet"]
    lab.mark_cni_ready(["10.99.0.0/16"])
    assert "worker1 NotReady" in cp.run(f"{admin} get nodes --no-headers").stdout
    refused(cp, f"{admin} wait --for=condition=Ready node/worker1 --timeout=1s", 1,
            "timed out waiting for the condition on nodes/worker1")
    lab.mark_cni_ready([pod_subnet])
    assert "worker1 Ready" in cp.run(f"{admin} get nodes --no-headers").stdout

    # Versions at join: the cluster's version must be one this kubeadm deploys ...
    cp.run(f"{admin} delete node worker1")
    worker.run("kubeadm reset -f")
    line = cp.run("kubeadm token create --ttl 5m --print-join-command").stdout
    token, ca_hash = line.split("--token ")[1].split()[0], lab.cluster()["ca_hash"]
    config = ("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n"
              f"discovery:\n  bootstrapToken:\n    apiServerEndpoint: '{lab.cluster()['endpoint']}'\n"
              f"    token: {token}\n    caCertHashes: ['sha256:{ca_hash}']\nnodeRegistration:\n  name: worker1\n")
    worker.path("/root/join.yaml").write_text(config)
    real_version = lab.cluster()["kubernetes_version"]
    lab._change_cluster(lambda state: state.update(kubernetes_version="v1.29.3"))
    refused(worker, "kubeadm join --config /root/join.yaml", 1,
            "this version of kubeadm only supports deploying clusters with the control plane version >= 1.30.0. "
            "Current version: v1.29.3")
    lab._change_cluster(lambda state: state.update(kubernetes_version=real_version))
    assert not worker.exists("/etc/kubernetes/pki/ca.crt")  # refused before kubelet-start
    # ... and the kubelet may not be older than kubeadm supports (three minors).
    installed = worker.read("/var/lib/lab/dpkg/installed")
    kubelet = next(line.split()[1] for line in installed.splitlines() if line.startswith("kubelet "))
    worker.path("/var/lib/lab/dpkg/installed").write_text(installed.replace(f"kubelet {kubelet}", "kubelet 1.27.16-1.1"))
    refused(worker, "kubeadm join --config /root/join.yaml", 1,
            '[ERROR KubeletVersion]: Kubelet version "v1.27.16" is lower than kubeadm can support')
    worker.path("/var/lib/lab/dpkg/installed").write_text(installed)
    worker.run("kubeadm join --config /root/join.yaml")
    assert "worker1" in lab.cluster()["nodes"]
