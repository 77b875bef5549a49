"""The SSH lab itself: nodes are isolated Ubuntu machines, teardown leaves nothing,
and the stand-ins refuse what the real tools refuse."""
import os
import pwd
import socket
import uuid

import pytest

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
    node.run("install -d /etc/apt/keyrings && echo key > /etc/apt/keyrings/kubernetes-apt-keyring.gpg && "
             "echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
             "https://pkgs.k8s.io/core:/stable:/v1.31/deb/ /' > /etc/apt/sources.list.d/kubernetes.list && "
             "apt-get update -qq >/dev/null && apt-get install -y kubectl >/dev/null")
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
    cp.run("kubectl --kubeconfig /etc/kubernetes/admin.conf delete node worker1")
    worker.run("cat > /root/join.yaml && kubeadm join --config /root/join.yaml",
               input=config.replace("TOKEN", token))
    assert lab.cluster()["nodes"]["worker1"]["token_id"] == token.split(".")[0]
