"""scripts/node/control-plane-change.sh run for real with a kubectl and an etcdctl
that answer as a 3- or 5-member cluster would: one control plane may leave while
the others keep quorum; two at once, or one that leaves too few healthy, may not."""
import os
import subprocess

import pytest

from components.cluster.node_scripts import script_text


def cluster(tmp_path, nodes, healthy):
    """Control-plane Nodes `nodes` (each an etcd member at 10.0.0.<i>) of which
    `healthy` answer etcd's health check."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "kubectl").write_text("#!/bin/bash\nprintf '%s\\n' " + " ".join(nodes) + "\n")
    members = "\n".join(f"{i:x}, started, {n}, https://10.0.0.{i}:2380, https://10.0.0.{i}:2379, false"
                        for i, n in enumerate(nodes, start=1))
    health = "\n".join(f"https://10.0.0.{i}:2379 is {'healthy' if n in healthy else 'unhealthy'}: x"
                       for i, n in enumerate(nodes, start=1))
    (bin_dir / "etcdctl").write_text(
        "#!/bin/bash\n"
        f'case "$*" in *"member list"*) printf "%s\\n" "{members}";; '
        f'*"endpoint health"*) printf "%s\\n" "{health}"; exit 1;; esac\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return bin_dir


def run(bin_dir, wanted):
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "ETCDCTL": str(bin_dir / "etcdctl"), "CONTROL_PLANES": wanted}
    return subprocess.run(["bash", "-c", script_text("control-plane-change.sh"), "check"],
                          env=env, capture_output=True, text=True, timeout=30)


def test_no_change_passes(tmp_path):
    result = run(cluster(tmp_path, ["cp1", "cp2", "cp3"], {"cp1"}), "cp1 cp2 cp3")
    assert result.returncode == 0 and "no control plane leaves" in result.stdout


def test_one_leaving_with_quorum_left_passes(tmp_path):
    result = run(cluster(tmp_path, ["cp1", "cp2", "cp3"], {"cp1", "cp2"}), "cp1 cp2")
    assert result.returncode == 0, result.stderr
    assert "cp3 leaves: 2 healthy of the 2 etcd members left (quorum 2)" in result.stdout


def test_an_unreachable_one_may_leave_when_the_rest_are_healthy(tmp_path):
    result = run(cluster(tmp_path, ["cp1", "cp2", "cp3"], {"cp1", "cp2"}), "cp1 cp2")
    assert result.returncode == 0
    five = run(cluster(tmp_path / "5", ["cp1", "cp2", "cp3", "cp4", "cp5"],
                       {"cp1", "cp2", "cp3", "cp4"}), "cp1 cp2 cp3 cp4")
    assert five.returncode == 0, five.stderr


def test_two_leaving_at_once_is_refused(tmp_path):
    result = run(cluster(tmp_path, ["cp1", "cp2", "cp3", "cp4", "cp5"],
                         {"cp1", "cp2", "cp3", "cp4", "cp5"}), "cp1 cp2 cp3")
    assert result.returncode == 1
    assert "removes 2 control planes at once (cp4 cp5)" in result.stderr
    assert "Nothing was changed" in result.stderr and "Fix:" in result.stderr


@pytest.mark.parametrize("nodes,healthy,wanted,needle", [
    (["cp1", "cp2", "cp3"], {"cp1", "cp3"}, "cp1 cp2",
     "removing cp3 leaves 2 etcd members of which 1 are healthy; they need 2"),
    (["cp1", "cp2", "cp3", "cp4", "cp5"], {"cp1", "cp2", "cp5"}, "cp1 cp2 cp3 cp4",
     "removing cp5 leaves 4 etcd members of which 2 are healthy; they need 3"),
])
def test_one_leaving_that_loses_quorum_is_refused(tmp_path, nodes, healthy, wanted, needle):
    result = run(cluster(tmp_path, nodes, healthy), wanted)
    assert result.returncode == 1
    assert needle in result.stderr


def test_a_leaving_control_plane_loses_its_etcd_member_before_its_node(tmp_path):
    """node-membership.sh ACTION=remove-control-plane: drain, etcdctl member remove
    by the member's ID (named after the node), then delete the Node."""
    bin_dir = cluster(tmp_path, ["cp1", "cp2", "cp3"], {"cp1", "cp2", "cp3"})
    log = tmp_path / "calls"
    for tool in ("kubectl", "etcdctl"):
        real = bin_dir / tool
        real.rename(bin_dir / f"{tool}.answers")
        real.write_text(f'#!/bin/bash\necho "{tool} $*" >> {log}\nexec {bin_dir}/{tool}.answers "$@"\n')
        real.chmod(0o755)
    snapshot = bin_dir / "kserve-etcd-snapshot"
    snapshot.write_text(f'#!/bin/bash\necho "snapshot" >> {log}\necho snapshot=/x/etcd-1.db\n')
    snapshot.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "ETCDCTL": str(bin_dir / "etcdctl"),
           "ACTION": "remove-control-plane", "NODE_NAME": "cp3", "SNAPSHOT": str(snapshot)}
    result = subprocess.run(["bash", "-c", script_text("node-membership.sh"), "membership"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    drain = next(i for i, c in enumerate(calls) if c.startswith("kubectl") and " drain cp3" in c)
    taken = calls.index("snapshot")
    remove = next(i for i, c in enumerate(calls) if c.startswith("etcdctl") and c.endswith("member remove 3"))
    delete = next(i for i, c in enumerate(calls) if c.startswith("kubectl") and " delete node cp3" in c)
    assert drain < taken < remove < delete

    # No snapshot, no removal: a failed one stops the script before the member goes.
    log.write_text("")
    snapshot.write_text('#!/bin/bash\necho "etcdctl snapshot save failed" >&2\nexit 1\n')
    failed = subprocess.run(["bash", "-c", script_text("node-membership.sh"), "membership"],
                            env=env, capture_output=True, text=True, timeout=30)
    assert failed.returncode == 1
    assert "the etcd snapshot before removing cp3 failed" in failed.stderr
    assert not [c for c in log.read_text().splitlines() if "member remove" in c]
