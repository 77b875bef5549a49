"""Preflight against real OpenSSH servers (the SSH lab's nodes): every check's
failure provoked for real, host key pinning with --trust, and a bastion hop."""
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.preflight.ssh import fingerprint
from lab.fixtures import REQUIRED_ENV, lab_marks, required, verdict
from lab.nodes import ADDRESS_PREFIX, KeyPair, Node
from components.offline.program import evaluate
from components.stack_file import stack_file_config

pytestmark = lab_marks
ROOT = Path(__file__).resolve().parents[1]
STACK = "labcheck"
DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'


def write_stack(directory: Path, config: dict) -> Path:
    path = directory / f"Pulumi.{STACK}.yaml"
    lines = ["# written by the test; comments must survive --trust", "config:"]
    body = yaml.safe_dump({f"kserve-cluster:{k}": v for k, v in config.items()}, sort_keys=False)
    path.write_text("\n".join(lines) + "\n" + "".join(f"  {line}\n" for line in body.splitlines()))
    return path


def preflight(directory: Path, key: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "preflight.py"), "--stack", STACK,
                           "--stacks-dir", str(directory), "--key-file", str(key), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def key_file(lab, tmp_path):
    path = tmp_path / "id_lab"
    path.write_text(lab.key.private_openssh)
    path.chmod(0o600)
    return path


def problem_line(output: str, node: str, check: str) -> str:
    found = [line for line in output.splitlines() if line.startswith(f"{node} (") and f" {check} " in line
             and (" FAIL: " in line or " WARN: " in line)]
    assert found, f"no {check} problem for {node} in:\n{output}"
    return found[0]


def test_fit_nodes_pass_with_a_table_and_progress(lab, tmp_path, key_file):
    nodes = lab.start(["cp1", "worker1"])
    for node in nodes:  # no swap: the one warning a fresh lab node has
        node.run(": > /var/lib/lab/swaps")
    write_stack(tmp_path, lab.stack_config(pin_host_keys=True))
    result = preflight(tmp_path, key_file)
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout.splitlines()
    assert table[0].split()[:4] == ["node", "ssh", "sudo", "os"]
    assert table[2].startswith(f"cp1 ({ADDRESS_PREFIX}21)") and "fail" not in table[2]
    assert result.stdout.rstrip().endswith("preflight passed."), result.stdout
    assert "[1/2]" in result.stderr and "[2/2]" in result.stderr  # a progress line per node


def test_every_failure_is_provoked_and_named(lab, tmp_path, key_file):
    cp1, worker1, worker2, worker3 = lab.start(["cp1", "worker1", "worker2", "worker3"])
    # cp1: another OS, and a port kubeadm needs is taken.
    cp1.path("/etc/os-release").write_text(DEBIAN)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((cp1.address, 10259))
    listener.listen()
    # worker1: sudo asks for a password.
    worker1.path("/etc/sudoers.d/labops").unlink()
    # worker2 and worker3: a cloned VM (same product_uuid and hostname); leftovers on worker2.
    (worker3.dir / "sys-class" / "dmi" / "id" / "product_uuid").write_text(worker2.product_uuid + "\n")
    worker3.run("hostname worker2")
    worker2.run("mkdir -p /etc/kubernetes && touch /etc/kubernetes/admin.conf")
    # worker3: unattended-upgrades holds the dpkg lock.
    worker3.hold_dpkg_lock(60)
    config = lab.stack_config(pin_host_keys=True)
    config["nodes"].append({"name": "ghost", "address": f"{ADDRESS_PREFIX}99", "role": "worker"})
    write_stack(tmp_path, config)
    try:
        result = preflight(tmp_path, key_file)
    finally:
        listener.close()
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "Debian GNU/Linux 12 (bookworm); only Ubuntu 22.04 is supported" in problem_line(out, "cp1", "os")
    assert "10259 are already in use" in problem_line(out, "cp1", "ports")
    assert "passwordless sudo" in problem_line(out, "worker1", "sudo")
    identity = problem_line(out, "worker2", "identity")
    assert f"product_uuid {worker2.product_uuid} is shared with worker3" in identity
    assert "hostname worker2 is shared with worker3" in identity
    assert "an earlier cluster is still on this node (/etc/kubernetes/admin.conf)" in \
        problem_line(out, "worker2", "leftovers")
    assert "dpkg lock is held" in problem_line(out, "worker3", "dpkg")
    assert "swap is on (2048 MB)" in problem_line(out, "worker2", "swap")
    assert "SSH connection refused" in problem_line(out, "ghost", "ssh")
    assert out.rstrip().endswith("preflight FAILED: fix the problems above, then run it again.")
    data = preflight(tmp_path, key_file, "--json")
    import json
    report = json.loads(data.stdout)
    assert report["ok"] is False
    statuses = {n["node"]: n["checks"]["os"]["status"] for n in report["nodes"] if "os" in n["checks"]}
    assert statuses["cp1"] == "fail" and statuses["worker2"] == "pass"


def install_containerd_io(node: Node, version: str) -> None:
    """What an earlier install left on the node: Docker's repository and a containerd.io build."""
    from components import versions
    node.run("install -d /etc/apt/keyrings && "
             f"curl -fsSL {versions.DOCKER_APT_REPO}/gpg | gpg --dearmor --yes -o /etc/apt/keyrings/docker.gpg && "
             f"echo 'deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] {versions.DOCKER_APT_REPO} "
             "jammy stable' > /etc/apt/sources.list.d/docker.list && apt-get update -qq >/dev/null && "
             f"apt-get install -y 'containerd.io={version}' >/dev/null")


def test_each_nodes_runc_is_shown_and_an_old_one_warned_about(lab, tmp_path, key_file):
    cp1, worker1, worker2 = lab.start(["cp1", "worker1", "worker2"])
    install_containerd_io(worker1, "1.7.28-1*")  # the old pin: runc 1.3.0
    install_containerd_io(worker2, "1.7.28-2*")  # Docker's rebuild: runc 1.3.3
    write_stack(tmp_path, lab.stack_config(pin_host_keys=True))
    result = preflight(tmp_path, key_file)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr  # warnings only
    table = [line.split() for line in out.splitlines()
             if line.split() and ": " not in line]  # not the problem lines below the table
    rows = {row[0]: row for row in table if row[0] in ("cp1", "worker1", "worker2")}
    header = table[0]
    # runc is the last column: its status, then the version it read.
    assert header[-1] == "runc"
    assert rows["cp1"][-2:] == ["pass", "none"]
    assert rows["worker1"][-2:] == ["warn", "1.3.0"]
    assert rows["worker2"][-2:] == ["pass", "1.3.3"]
    line = problem_line(out, "worker1", "runc")
    assert "runc 1.3.0 predates the fixes for CVE-2025-31133" in line
    assert not [l for l in out.splitlines() if l.startswith(("cp1 (", "worker2 (")) and " runc " in l
                and " WARN: " in l]


def test_a_changed_host_key_is_refused_with_both_fingerprints(lab, tmp_path, key_file):
    (cp1,) = lab.start(["cp1"])
    impostor = KeyPair.generate().public_line
    write_stack(tmp_path, lab.stack_config(host_keys={"cp1": impostor}))
    result = preflight(tmp_path, key_file)
    assert result.returncode == 1
    line = problem_line(result.stdout, "cp1", "ssh")
    assert f"the stack pins {fingerprint(impostor)}" in line
    assert f"the server offers {fingerprint(cp1.host_key.public_line)}" in line
    assert "--trust cp1" in line


def test_trust_records_the_keys_and_the_program_uses_them(lab, tmp_path, key_file):
    nodes = lab.start(["cp1", "worker1"])
    path = write_stack(tmp_path, lab.stack_config(pin_host_keys=False))
    result = preflight(tmp_path, key_file, "--trust")
    assert result.returncode == 0, result.stderr
    for node in nodes:
        assert fingerprint(node.host_key.public_line) in result.stdout
    text = path.read_text()
    assert text.startswith("# written by the test; comments must survive --trust")
    config = stack_file_config(STACK, tmp_path)
    pinned = {n["name"]: n["hostKey"] for n in config["nodes"]}
    assert pinned == {n.name: n.host_key.public_line for n in nodes}
    # The program puts the pinned key on every connection it makes to that node.
    evaluation = evaluate(config)
    for command in evaluation.commands():
        host = command.inputs["connection"]["host"]
        node = next(n for n in nodes if n.address == host)
        assert command.inputs["connection"]["hostKey"] == node.host_key.public_line, command.name
    # And preflight itself now checks them and passes.
    assert preflight(tmp_path, key_file).returncode == 0


# --- a bastion: the node sits in a network only the jump host reaches -------------------

NETNS = {"jump": "ksc-jump", "hidden": "ksc-hidden"}
HOST_SIDE, JUMP_OUTER, JUMP_INNER, HIDDEN = "10.231.1.1", "10.231.1.2", "10.231.2.1", "10.231.2.2"


def sh(command: str) -> None:
    subprocess.run(["bash", "-c", command], check=True, capture_output=True, text=True)


def netns_unavailable_reason():
    """Why network namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "network namespaces: no `ip` (iproute2) on PATH"
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if listed.returncode != 0:
        return f"network namespaces: `ip netns list` failed: {listed.stderr.strip()[:200]}"
    return None


def require_netns(reason):
    """Run, skip with the reason, or fail where the lab is required (KSERVE_LAB_REQUIRED=1),
    as tests/lab/fixtures.py decides for the lab itself."""
    outcome = verdict(reason, required())
    if outcome == "skip":
        pytest.skip(reason)
    if outcome == "fail":
        pytest.fail(f"{reason}, but {REQUIRED_ENV}=1", pytrace=False)


@pytest.fixture
def two_networks():
    """host <-> jump (10.231.1.0/30) and jump <-> hidden (10.231.2.0/30), in network
    namespaces made here. The host gets an `unreachable` route for the hidden
    network, so a direct try fails at once and nothing leaves this machine."""
    require_netns(netns_unavailable_reason())
    pid = str(__import__("os").getpid())
    jump, hidden = NETNS["jump"] + pid, NETNS["hidden"] + pid
    try:
        sh(f"ip netns add {jump} && ip netns add {hidden}")
        sh(f"ip link add kj{pid} type veth peer name kjo{pid} && ip link set kjo{pid} netns {jump}")
        sh(f"ip netns exec {jump} ip link add kji{pid} type veth peer name kh{pid}")
        sh(f"ip netns exec {jump} ip link set kh{pid} netns {hidden}")
        sh(f"ip addr add {HOST_SIDE}/30 dev kj{pid} && ip link set kj{pid} up")
        sh(f"ip netns exec {jump} sh -c 'ip addr add {JUMP_OUTER}/30 dev kjo{pid} && ip link set kjo{pid} up "
           f"&& ip addr add {JUMP_INNER}/30 dev kji{pid} && ip link set kji{pid} up && ip link set lo up'")
        sh(f"ip netns exec {hidden} sh -c 'ip addr add {HIDDEN}/30 dev kh{pid} && ip link set kh{pid} up "
           "&& ip link set lo up'")
        sh("ip route add unreachable 10.231.2.0/30")
        yield jump, hidden
    finally:
        subprocess.run(["ip", "route", "del", "unreachable", "10.231.2.0/30"], capture_output=True)
        for name in (jump, hidden):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", f"kj{pid}"], capture_output=True)


def start_in_netns(lab, name: str, address: str, netns: str) -> Node:
    """A lab node whose sshd runs inside `netns` (the harness starts nodes on loopback)."""
    node = Node(lab, name, address, "control-plane" if not lab.nodes else "worker")
    lab.nodes[name] = node
    original = subprocess.Popen

    def in_netns(args, **kwargs):
        return original(["ip", "netns", "exec", netns, *args], **kwargs)

    subprocess.Popen = in_netns
    try:
        node.start()
    finally:
        subprocess.Popen = original
    node.wait_namespace()
    return node


def test_a_bastion_reaches_a_node_that_is_not_reachable_directly(lab, tmp_path, key_file, two_networks):
    jump_ns, hidden_ns = two_networks
    jump = start_in_netns(lab, "jump", JUMP_OUTER, jump_ns)
    hidden = start_in_netns(lab, "cp1", HIDDEN, hidden_ns)
    jump.wait_listening()
    with pytest.raises(OSError):  # the premise: no direct route to the node
        socket.create_connection((HIDDEN, 22), timeout=2).close()
    direct = {"nodes": [{"name": "cp1", "address": HIDDEN, "role": "control-plane",
                         "hostKey": hidden.host_key.public_line}],
              "ssh": {"user": lab.user}}
    write_stack(tmp_path, direct)
    refused = preflight(tmp_path, key_file)
    assert refused.returncode == 1 and f"no route to {HIDDEN}:22 from here" in refused.stdout
    through = dict(direct, ssh={"user": lab.user, "bastion": {
        "address": JUMP_OUTER, "user": lab.user, "hostKey": jump.host_key.public_line}})
    write_stack(tmp_path, through)
    result = preflight(tmp_path, key_file)
    assert "ssh" not in " ".join(l for l in result.stdout.splitlines() if " FAIL: " in l), result.stdout
    assert problem_line(result.stdout, "cp1", "swap")  # the node answered: its facts are judged
    # The program's connections go through the same bastion.
    evaluation = evaluate(stack_file_config(STACK, tmp_path))
    proxy = evaluation.named("cp1-prepare").inputs["connection"]["proxy"]
    assert (proxy["host"], proxy["user"], proxy["hostKey"]) == (JUMP_OUTER, lab.user,
                                                               jump.host_key.public_line)
