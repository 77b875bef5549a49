"""etcd snapshots and restore (issue 17, section 2): the config rules, the
snapshot script run for real against stand-in etcdctl/etcdutl, the timer's
place in the program's graph, and backup.py/restore.py against a stand-in
executor. The lab with a real etcd is not here yet (docs/testing.md)."""
import hashlib
import io
import os
import shutil
import stat
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from components import versions
from components.backup import remote
from components.backup.config import (
    DEFAULT_KEEP, DEFAULT_SCHEDULE, SNAPSHOT_DIR, calendar_subset_problem, parse_backup_config,
    snapshots_to_drop)
from components.cluster.node_scripts import SCRIPTS_DIR, render_command, script_text
from components.offline.graph import Graph
from components.offline.program import evaluate
from components.problems import Problems
from components.stack_config import ConfigError, parse_stack_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
HAS_SYSTEMD_ANALYZE = shutil.which("systemd-analyze") is not None
NODES = [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"},
         {"name": "w1", "address": "10.0.2.22", "role": "worker"}]


def parse(backup, which=shutil.which):
    problems = Problems()
    result = parse_backup_config(problems, backup, which)
    return result, problems.items


def stack(backup=None):
    raw = {"nodes": NODES}
    if backup is not None:
        raw["backup"] = backup
    return parse_stack_config(raw, has_secret_private_key=True)


# ------------------------------------------------------------ config

def test_defaults_every_six_hours_keep_twelve_no_nfs():
    config = stack().backup
    assert (config.schedule, config.keep, config.nfs) == (DEFAULT_SCHEDULE, DEFAULT_KEEP, False)
    assert DEFAULT_SCHEDULE == "*-*-* 00/6:00:00"


def test_the_issues_example_is_accepted():
    config = stack({"schedule": "*-*-* 00/6:00:00", "keep": 12,
                    "nfs": {"server": "10.0.2.5", "path": "/srv/backups"}}).backup
    assert (config.nfs_server, config.nfs_path, config.nfs) == ("10.0.2.5", "/srv/backups", True)


def test_bad_values_are_refused_together_each_with_key_value_and_fix():
    with pytest.raises(ConfigError) as caught:
        stack({"keep": 0, "schedule": "every tuesday", "nfs": {"server": "10.0.2.5",
                                                                "path": "srv/backups"}})
    text = str(caught.value)
    assert "backup.keep" in text and "0 would delete every snapshot" in text
    assert "backup.nfs.path" in text and "srv/backups" in text and "absolute" in text
    assert "backup.schedule" in text and "every tuesday" in text and "OnCalendar" in text


@pytest.mark.parametrize("keep", [0, -1, 1.5, "12", True])
def test_keep_below_one_or_not_a_number_is_refused(keep):
    _, errors = parse({"keep": keep})
    assert any("backup.keep" in e for e in errors)


def test_unknown_keys_and_missing_nfs_server_are_refused():
    _, errors = parse({"keepp": 3, "nfs": {"path": "/srv"}})
    assert any("keepp" in e for e in errors)
    assert any("backup.nfs.server" in e for e in errors)


@pytest.mark.skipif(not HAS_SYSTEMD_ANALYZE, reason="no systemd-analyze on this machine")
@pytest.mark.parametrize("schedule,ok", [
    ("*-*-* 00/6:00:00", True), ("daily", True), ("Mon..Fri 02:30", True),
    ("*-*-* 25:00:00", False), ("every tuesday", False), ("*-*-* 00:00:00\nExecStart=x", False)])
def test_systemd_analyze_judges_the_schedule_when_present(schedule, ok):
    _, errors = parse({"schedule": schedule})
    assert (not errors) == ok, errors


@pytest.mark.parametrize("schedule,ok", [
    ("*-*-* 00/6:00:00", True), ("daily", True), ("hourly", True), ("Mon..Fri 02:30", True),
    ("Sat,Sun *-*-* 03:00:00", True), ("2026-01-01", True), ("*-*-01 04:00", True),
    ("*-*-* 24:00:00", False), ("*-*-* 12:60", False), ("every tuesday", False), ("", False),
    ("Mon", False), ("*-*-* 1:2:3 4:5", False)])
def test_the_documented_subset_without_systemd_analyze(schedule, ok):
    _, errors = parse({"schedule": schedule}, which=lambda _: None)
    assert (not errors) == ok, errors
    if schedule and HAS_SYSTEMD_ANALYZE:  # the subset never accepts what systemd refuses
        real = subprocess.run(["systemd-analyze", "calendar", "--", schedule], capture_output=True)
        if ok:
            assert real.returncode == 0, schedule


def test_subset_explains_why():
    assert "out of range" in calendar_subset_problem("*-*-* 24:00")
    assert calendar_subset_problem("weekly") is None


@pytest.mark.parametrize("count,keep,dropped", [(0, 3, 0), (3, 3, 0), (5, 3, 2), (13, 12, 1), (2, 1, 1)])
def test_retention_keeps_the_newest(count, keep, dropped):
    names = [f"etcd-2026010{i}T000000Z-cp1.db" for i in range(count)][::-1]
    drop = snapshots_to_drop(names, keep)
    assert len(drop) == dropped
    assert set(drop) == set(sorted(names)[:dropped])


# ------------------------------------------------------------ the snapshot script, for real

@pytest.fixture
def fake_node(tmp_path):
    """Stand-in etcdctl (writes the 'snapshot') and etcdutl (accepts it), and a
    mount that fails or succeeds on request."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "etcdctl").write_text(
        '#!/bin/sh\nfor last; do :; done\nprintf "snapshot-bytes-%s" "$$" > "$last"\n'
        'echo "$@" >> "$(dirname "$0")/etcdctl.args"\n')
    (bin_dir / "etcdutl").write_text('#!/bin/sh\necho \'{"hash":1,"revision":2}\'\n')
    (bin_dir / "mount-ok").write_text('#!/bin/sh\nexit 0\n')
    (bin_dir / "mount-fails").write_text('#!/bin/sh\necho "mount.nfs: access denied" >&2\nexit 32\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    tmp = tmp_path / "tmp"
    tmp.mkdir()

    def run(keep=3, nfs="", mount="mount-ok"):
        env = {**os.environ, "KEEP": str(keep), "SNAPSHOT_DIR": str(tmp_path / "snaps"),
               "BACKUP_CONF": str(tmp_path / "none.env"), "ETCDCTL": str(bin_dir / "etcdctl"),
               "ETCDUTL": str(bin_dir / "etcdutl"), "MOUNT": str(bin_dir / mount),
               "UMOUNT": str(bin_dir / "mount-ok"), "NODE_NAME": "cp1", "TMPDIR": str(tmp),
               "NFS_SERVER": nfs, "NFS_PATH": "/srv/backups" if nfs else ""}
        return subprocess.run(["bash", "-c", script_text("etcd-snapshot.sh"), "etcd-snapshot.sh"],
                              env=env, capture_output=True, text=True)
    return run, tmp_path


def test_snapshot_script_saves_checks_hashes_and_keeps_the_newest(fake_node):
    run, root = fake_node
    for _ in range(5):
        result = run(keep=3)
        assert result.returncode == 0, result.stderr
    fields = remote.parse_fields(result.stdout)
    snaps = sorted((root / "snaps").glob("etcd-*.db"))
    assert len(snaps) == 3
    assert fields["snapshot"] == str(snaps[-1]) and fields["nfs"] == "off"
    digest = hashlib.sha256(snaps[-1].read_bytes()).hexdigest()
    assert fields["sha256"] == digest
    assert (root / "snaps" / f"{snaps[-1].name}.sha256").read_text() == f"{digest}  {snaps[-1].name}\n"
    assert len(list((root / "snaps").glob("*.sha256"))) == 3
    for snap in snaps:
        assert stat.S_IMODE(snap.stat().st_mode) == 0o600
    assert stat.S_IMODE((root / "snaps").stat().st_mode) == 0o700
    args = (root / "bin" / "etcdctl.args").read_text().splitlines()[-1]
    assert "--cert /etc/kubernetes/pki/etcd/healthcheck-client.crt" in args
    assert "--cacert /etc/kubernetes/pki/etcd/ca.crt" in args and "snapshot save" in args
    assert not list((root / "snaps").glob(".partial-*"))


def test_snapshot_script_copies_to_nfs(fake_node):
    run, root = fake_node
    result = run(nfs="10.0.2.5")
    assert result.returncode == 0, result.stderr
    assert remote.parse_fields(result.stdout)["nfs"] == "copied"
    copies = list((root / "tmp").glob("*/cp1/etcd-*.db"))
    assert len(copies) == 1 and (copies[0].parent / f"{copies[0].name}.sha256").is_file()


def test_a_failed_nfs_copy_warns_and_keeps_the_local_snapshot(fake_node):
    run, root = fake_node
    result = run(nfs="10.0.2.5", mount="mount-fails")
    assert result.returncode == 0
    assert "WARNING: could not mount 10.0.2.5:/srv/backups" in result.stderr
    assert remote.parse_fields(result.stdout)["nfs"] == "failed"
    assert len(list((root / "snaps").glob("etcd-*.db"))) == 1


def test_snapshot_script_refuses_keep_zero(fake_node):
    run, _ = fake_node
    result = run(keep=0)
    assert result.returncode == 1 and "KEEP must be" in result.stderr


# ------------------------------------------------------------ the program's graph

@pytest.fixture(scope="module")
def evaluated():
    config = {"nodes": NODES, "ssh": {"user": "ubuntu"},
              "backup": {"schedule": "daily", "keep": 5,
                         "nfs": {"server": "10.0.2.5", "path": "/srv/backups"}}}
    evaluation = evaluate(config)
    return evaluation, Graph(evaluation)


def test_timer_is_installed_after_init_on_the_control_plane_with_its_delete(evaluated):
    evaluation, graph = evaluated
    timer = evaluation.named("cp1-etcd-backup-timer")
    assert graph.waits_for("cp1-etcd-backup-timer", "cp1-kubeadm-init")
    assert timer.inputs["create"] == render_command("etcd-backup-install.sh", {
        "ETCD_VERSION": versions.ETCD_CLIENT_VERSION, "ETCD_RELEASE_URL": versions.ETCD_RELEASE_URL,
        "ETCD_SHA256_AMD64": versions.ETCD_CLIENT_SHA256["amd64"],
        "ETCD_SHA256_ARM64": versions.ETCD_CLIENT_SHA256["arm64"], "SCHEDULE": "daily",
        "KEEP": "5", "SNAPSHOT_DIR": SNAPSHOT_DIR, "NFS_SERVER": "10.0.2.5",
        "NFS_PATH": "/srv/backups"})
    assert timer.inputs["delete"] == render_command("etcd-backup-remove.sh")
    assert timer.inputs["stdin"] == script_text("etcd-snapshot.sh")
    triggers = timer.inputs["triggers"]
    assert "SCHEDULE=daily" in triggers and "KEEP=5" in triggers
    assert any(str(t).startswith("runner=") for t in triggers)
    assert not [c for c in evaluation.commands() if "etcd-backup" in c.name and "w1" in c.name]


def test_a_changed_schedule_changes_the_triggers():
    def triggers(schedule):
        evaluation = evaluate({"nodes": NODES, "ssh": {"user": "ubuntu"},
                               "backup": {"schedule": schedule}})
        return evaluation.named("cp1-etcd-backup-timer").inputs["triggers"]
    assert triggers("daily") != triggers("hourly")


def test_backup_output_says_when_and_where(evaluated):
    evaluation, _ = evaluated
    out = evaluation.outputs["backup"]
    assert out["schedule"] == "daily" and out["keep"] == 5 and out["nodes"] == ["cp1"]
    assert out["directory"] == SNAPSHOT_DIR and out["nfs"] == "10.0.2.5:/srv/backups"
    assert out["etcdMembers"] == [{"name": "cp1", "peerURL": "https://10.0.2.21:2380"}]


# ------------------------------------------------------------ backup.py and restore.py

class FakeExecutor:
    def __init__(self, snapshot=b"etcd-bytes" * 1000, reported_sha=None, restore_status=0):
        self.snapshot, self.calls, self.uploaded = snapshot, [], b""
        self.sha = reported_sha or hashlib.sha256(snapshot).hexdigest()
        self.restore_status = restore_status

    def run(self, command):
        self.calls.append(("run", command))
        if command == remote.snapshot_command():
            return 0, (f"snapshot={SNAPSHOT_DIR}/etcd-20260101T000000Z-cp1.db\n"
                       f"sha256={self.sha}\nsize={len(self.snapshot)}\nnode=cp1\nnfs=off\n"), ""
        if "etcd-restore.sh" in command:
            return self.restore_status, "kube_system_uid=abc\nprevious_data_dir=/var/lib/etcd.old\n", "boom"
        return 127, "", "unexpected"

    def read(self, command, sink):
        self.calls.append(("read", command))
        for i in range(0, len(self.snapshot), 4096):
            sink.write(self.snapshot[i:i + 4096])
        return 0, ""

    def write(self, command, source):
        self.calls.append(("write", command))
        self.uploaded = source.read()
        return 0, ""


def executor_for(fake):
    @contextmanager
    def opened(config, node, key_file):
        assert node.name == "cp1"
        yield fake
    return opened


@pytest.fixture
def stacks_dir(tmp_path):
    d = tmp_path / "stacks"
    d.mkdir()
    (d / "Pulumi.t.yaml").write_text(
        "config:\n  kserve-cluster:nodes:\n    - {name: cp1, address: 10.0.2.21, role: control-plane}\n"
        "  kserve-cluster:ssh: {useAgent: true}\n")
    return d


def test_backup_py_streams_the_snapshot_0600_with_its_checksum(tmp_path, stacks_dir, capsys):
    import backup
    fake = FakeExecutor()
    status = backup.main(["t", "--out", str(tmp_path / "out"), "--stacks-dir", str(stacks_dir)],
                         executor_for=executor_for(fake))
    assert status == 0
    saved = tmp_path / "out" / "etcd-20260101T000000Z-cp1.db"
    assert saved.read_bytes() == fake.snapshot
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert (tmp_path / "out" / f"{saved.name}.sha256").read_text().startswith(fake.sha)
    assert [c[0] for c in fake.calls] == ["run", "read"]
    assert fake.calls[1][1] == f"sudo -n cat -- {SNAPSHOT_DIR}/etcd-20260101T000000Z-cp1.db"
    assert "etcd-bytes" not in capsys.readouterr().out


def test_backup_py_refuses_a_copy_whose_checksum_differs(tmp_path, stacks_dir):
    import backup
    fake = FakeExecutor(reported_sha="0" * 64)
    status = backup.main(["t", "--out", str(tmp_path / "out"), "--stacks-dir", str(stacks_dir)],
                         executor_for=executor_for(fake))
    assert status == 1
    assert not list((tmp_path / "out").iterdir())


def test_read_command_only_reads_snapshots():
    with pytest.raises(remote.BackupError):
        remote.read_file_command("/etc/kubernetes/pki/ca.key")
    with pytest.raises(remote.BackupError):
        remote.read_file_command(f"{SNAPSHOT_DIR}/../../etc/shadow")


def test_restore_py_asks_and_does_nothing_unconfirmed(tmp_path, stacks_dir):
    import restore
    snap = tmp_path / "etcd-1.db"
    snap.write_bytes(b"x")
    fake = FakeExecutor()
    status = restore.main(["t", str(snap), "--stacks-dir", str(stacks_dir)],
                          executor_for=executor_for(fake), ask=lambda prompt: "no")
    assert status == 3 and fake.calls == []


def test_restore_py_uploads_then_restores_with_the_checksum(tmp_path, stacks_dir, capsys):
    import restore
    snap = tmp_path / "etcd-1.db"
    snap.write_bytes(b"snapshot")
    sha = hashlib.sha256(b"snapshot").hexdigest()
    fake = FakeExecutor()
    status = restore.main(["t", str(snap), "--stacks-dir", str(stacks_dir)],
                          executor_for=executor_for(fake), ask=lambda prompt: "t")
    assert status == 0
    assert fake.uploaded == b"snapshot"
    assert fake.calls == [("write", remote.upload_command("etcd-1.db")),
                          ("run", remote.restore_command(f"{remote.RESTORE_DIR}/etcd-1.db", sha))]
    assert "kube-system UID abc" in capsys.readouterr().out


def test_restore_py_refuses_a_file_that_does_not_match_its_sha256(tmp_path, stacks_dir):
    import restore
    snap = tmp_path / "etcd-1.db"
    snap.write_bytes(b"snapshot")
    (tmp_path / "etcd-1.db.sha256").write_text("0" * 64 + "  etcd-1.db\n")
    fake = FakeExecutor()
    assert restore.main(["t", str(snap), "--yes", "--stacks-dir", str(stacks_dir)],
                        executor_for=executor_for(fake)) == 1
    assert fake.calls == []


def test_restore_command_runs_the_node_script_with_its_inputs():
    words = remote.restore_command("/var/lib/kserve-cluster/etcd-restore/a.db", "ab" * 32).split()
    assert words[:3] == ["sudo", "-n", "env"]
    assert "SNAPSHOT=/var/lib/kserve-cluster/etcd-restore/a.db" in words
    text = (SCRIPTS_DIR / "etcd-restore.sh").read_text()
    for step in ("\"$ETCDUTL\" snapshot restore", "--initial-cluster \"$name=$peer\"",
                 "--initial-advertise-peer-urls \"$peer\"", "systemctl restart kubelet",
                 "endpoint health", "/readyz", "kube-controller-manager kube-scheduler"):
        assert step in text, step
    # manifests aside before the restore, back after the swap
    assert text.index('mv "$MANIFESTS/$pod.yaml" "$stash/$pod.yaml"') < \
        text.index("snapshot restore \"$SNAPSHOT\"") < text.index('mv "$restored" "$data"') < \
        text.index("put_back\nsystemctl restart kubelet")
