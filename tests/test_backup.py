"""etcd snapshots and restore (issue 17, section 2): the config rules, the
snapshot script run for real against stand-in etcdctl/etcdutl, the timer's
place in the program's graph, and backup.py/restore.py against a stand-in
executor. The same scripts against a real etcd: tests/test_lab_etcd.py."""
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
    """A control plane as backup.py and restore.py see it: the snapshot script, and
    each phase of etcd-restore.sh (fail_phase makes that phase fail)."""

    def __init__(self, snapshot=b"etcd-bytes" * 1000, reported_sha=None, restore_status=0,
                 name="cp1", address="10.0.2.21", fail_phase="", log=None):
        self.snapshot, self.calls, self.uploaded = snapshot, [], b""
        self.sha = reported_sha or hashlib.sha256(snapshot).hexdigest()
        self.name, self.address, self.fail_phase = name, address, fail_phase
        self.log = log if log is not None else []
        if restore_status:
            self.fail_phase = "restore"

    def run(self, command):
        self.calls.append(("run", command))
        if command == remote.snapshot_command():
            return 0, (f"snapshot={SNAPSHOT_DIR}/etcd-20260101T000000Z-cp1.db\n"
                       f"sha256={self.sha}\nsize={len(self.snapshot)}\nnode=cp1\nnfs=off\n"), ""
        if "etcd-restore.sh" in command:
            phase = next(w for w in command.split() if w.startswith("PHASE=")).split("=", 1)[1]
            self.log.append((self.name, phase))
            if phase == self.fail_phase:
                return 1, "", f"boom in {phase}"
            return 0, {
                "check": f"name={self.name}\npeer=https://{self.address}:2380\ndata=/var/lib/etcd\n"
                         f"endpoint=https://{self.address}:2379\n",
                "start": "previous_data_dir=/var/lib/etcd.old\n",
                "wait": "kube_system_uid=abc\n" if "WAIT_API=1" in command else ""}.get(phase, ""), ""
        if command == remote.restart_kubelet_command():
            return 0, "", ""
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


def executors_for(fakes):
    @contextmanager
    def opened(config, node, key_file):
        yield fakes[node.name]
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


def phases_of(fake):
    return [next(w for w in c[1].split() if w.startswith("PHASE=")).split("=", 1)[1]
            for c in fake.calls if c[0] == "run" and "etcd-restore.sh" in c[1]]


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
    assert fake.calls[0] == ("write", remote.upload_command("etcd-1.db"))
    assert phases_of(fake) == ["check", "stop", "restore", "start", "wait"]
    restore_call = next(c[1] for c in fake.calls if "PHASE=restore" in c[1])
    words = restore_call.split()
    assert f"SNAPSHOT_SHA256={sha}" in words and "NAME=cp1" in words
    assert "INITIAL_CLUSTER=cp1=https://10.0.2.21:2380" in words
    assert "kube-system UID abc" in capsys.readouterr().out


MEMBERS = [remote.Member("cp1", "cp1", "https://10.0.2.21:2380", "/var/lib/etcd"),
           remote.Member("cp2", "cp2", "https://10.0.2.22:2380", "/var/lib/etcd"),
           remote.Member("cp3", "cp3", "https://10.0.2.23:2380", "/var/lib/etcd")]


def test_each_member_is_restored_with_its_name_and_peer_url_and_the_whole_cluster():
    stamp = "20260101T000000Z"
    args = [remote.restore_arguments(m, MEMBERS, stamp, "/s.db") for m in MEMBERS]
    cluster = "cp1=https://10.0.2.21:2380,cp2=https://10.0.2.22:2380,cp3=https://10.0.2.23:2380"
    assert args[1] == ["snapshot", "restore", "/s.db", "--name", "cp2", "--initial-cluster", cluster,
                       "--initial-cluster-token", "kserve-restore-20260101t000000z",
                       "--initial-advertise-peer-urls", "https://10.0.2.22:2380",
                       "--data-dir", "/var/lib/etcd.restore-20260101T000000Z"]
    # one snapshot, one cluster, one token; a name and a peer URL per member
    assert {a[2] for a in args} == {"/s.db"}
    assert {a[a.index("--initial-cluster") + 1] for a in args} == {cluster}
    assert len({a[a.index("--initial-cluster-token") + 1] for a in args}) == 1
    assert [a[a.index("--name") + 1] for a in args] == ["cp1", "cp2", "cp3"]
    env = remote.restore_env(MEMBERS[2], MEMBERS, stamp, "/s.db", "ab" * 32)
    assert env == {"SNAPSHOT": "/s.db", "SNAPSHOT_SHA256": "ab" * 32, "NAME": "cp3",
                   "INITIAL_CLUSTER": cluster, "CLUSTER_TOKEN": "kserve-restore-20260101t000000z",
                   "PEER_URL": "https://10.0.2.23:2380"}
    # a new token per restore: the restored members never join the old cluster
    assert remote.cluster_token("20260102T000000Z") != remote.cluster_token(stamp)
    with pytest.raises(remote.BackupError, match="share a name"):
        remote.restore_arguments(MEMBERS[0], MEMBERS + [MEMBERS[0]], stamp, "/s.db")


@pytest.fixture
def three_cp_stacks(tmp_path):
    d = tmp_path / "stacks3"
    d.mkdir()
    nodes = "".join(f"    - {{name: cp{i}, address: 10.0.2.2{i}, role: control-plane}}\n" for i in (1, 2, 3))
    (d / "Pulumi.t.yaml").write_text(
        "config:\n  kserve-cluster:nodes:\n" + nodes +
        "    - {name: w1, address: 10.0.2.24, role: worker}\n"
        "  kserve-cluster:kubernetes:\n    highAvailability: {virtualIP: 10.0.2.20}\n"
        "  kserve-cluster:ssh: {useAgent: true}\n")
    return d


def test_restore_py_with_three_control_planes_runs_each_phase_everywhere_first(tmp_path, three_cp_stacks,
                                                                              capsys):
    import restore
    snap = tmp_path / "etcd-1.db"
    snap.write_bytes(b"snapshot")
    log = []
    fakes = {f"cp{i}": FakeExecutor(name=f"cp{i}", address=f"10.0.2.2{i}", log=log) for i in (1, 2, 3)}
    fakes["w1"] = FakeExecutor(name="w1", log=log)
    asked = []
    status = restore.main(["t", str(snap), "--stacks-dir", str(three_cp_stacks)],
                          executor_for=executors_for(fakes), ask=lambda p: asked.append(p) or "t")
    assert status == 0 and asked
    # every control plane stopped before any member is restored, every member
    # restored before any starts, all started before any is awaited
    assert [p for _, p in log] == ["check"] * 3 + ["stop"] * 3 + ["restore"] * 3 + ["start"] * 3 + ["wait"] * 3
    assert [n for n, _ in log[:3]] == ["cp1", "cp2", "cp3"]
    cluster = "INITIAL_CLUSTER=cp1=https://10.0.2.21:2380,cp2=https://10.0.2.22:2380,cp3=https://10.0.2.23:2380"
    for name, fake in fakes.items():
        if name == "w1":
            assert fake.calls == [("run", remote.restart_kubelet_command())]
            continue
        assert fake.uploaded == b"snapshot"
        words = next(c[1] for c in fake.calls if "PHASE=restore" in c[1]).split()
        assert cluster in words and f"NAME={name}" in words
        assert f"PEER_URL=https://10.0.2.2{name[-1]}:2380" in words
    stamps = {w for f in fakes.values() for c in f.calls for w in c[1].split() if w.startswith("STAMP=")}
    assert len(stamps) == 1, "one restore, one stamp on every node"
    out = capsys.readouterr()
    assert "kube-system UID abc" in out.out and "w1: kubelet restarted" in out.err


def test_a_member_that_fails_to_restore_puts_every_node_back(tmp_path, three_cp_stacks, capsys):
    import restore
    snap = tmp_path / "etcd-1.db"
    snap.write_bytes(b"snapshot")
    log = []
    fakes = {f"cp{i}": FakeExecutor(name=f"cp{i}", address=f"10.0.2.2{i}", log=log,
                                    fail_phase="restore" if i == 2 else "") for i in (1, 2, 3)}
    fakes["w1"] = FakeExecutor(name="w1", log=log)
    assert restore.main(["t", str(snap), "--yes", "--stacks-dir", str(three_cp_stacks)],
                        executor_for=executors_for(fakes)) == 1
    assert [p for _, p in log] == ["check"] * 3 + ["stop"] * 3 + ["restore"] * 2 + ["abort"] * 3
    assert "start" not in phases_of(fakes["cp1"])
    assert fakes["w1"].calls == []
    err = capsys.readouterr().err
    assert "cp2: the restore failed" in err and "boom in restore" in err
    assert err.count("put back as it was") == 3


def test_restore_py_refuses_an_even_number_of_control_planes(tmp_path, three_cp_stacks, capsys):
    import restore
    text = (three_cp_stacks / "Pulumi.t.yaml").read_text()
    (three_cp_stacks / "Pulumi.t.yaml").write_text(
        text.replace("    - {name: w1", "    - {name: cp4, address: 10.0.2.25, role: control-plane}\n    - {name: w1"))
    snap = tmp_path / "etcd-1.db"
    snap.write_bytes(b"snapshot")
    assert restore.main(["t", str(snap), "--yes", "--stacks-dir", str(three_cp_stacks)],
                        executor_for=executors_for({})) == 2


def test_a_control_plane_that_does_not_answer_stops_the_restore_before_anything_changes(
        tmp_path, three_cp_stacks, capsys):
    import restore
    snap = tmp_path / "etcd-1.db"
    snap.write_bytes(b"snapshot")
    log = []
    fakes = {f"cp{i}": FakeExecutor(name=f"cp{i}", log=log) for i in (1, 2)}

    @contextmanager
    def opened(config, node, key_file):
        if node.name == "cp3":
            raise remote.BackupError("connection refused")
        yield fakes[node.name]
    assert restore.main(["t", str(snap), "--yes", "--stacks-dir", str(three_cp_stacks)],
                        executor_for=opened) == 1
    assert log == [] and all(f.calls == [] for f in fakes.values())
    assert "restore.py: cp3: connection refused" in capsys.readouterr().err


def test_restore_py_refuses_a_file_that_does_not_match_its_sha256(tmp_path, stacks_dir):
    import restore
    snap = tmp_path / "etcd-1.db"
    snap.write_bytes(b"snapshot")
    (tmp_path / "etcd-1.db.sha256").write_text("0" * 64 + "  etcd-1.db\n")
    fake = FakeExecutor()
    assert restore.main(["t", str(snap), "--yes", "--stacks-dir", str(stacks_dir)],
                        executor_for=executor_for(fake)) == 1
    assert fake.calls == []


def test_restore_command_runs_the_node_script_phase_by_phase():
    words = remote.restore_command("restore", "20260101T000000Z", {"NAME": "cp1"}).split()
    assert words[:3] == ["sudo", "-n", "env"]
    assert "PHASE=restore" in words and "STAMP=20260101T000000Z" in words and "NAME=cp1" in words
    text = (SCRIPTS_DIR / "etcd-restore.sh").read_text()
    for step in ("\"$ETCDUTL\" snapshot restore", "--initial-cluster \"$INITIAL_CLUSTER\"",
                 "--initial-cluster-token \"$CLUSTER_TOKEN\"", "--name \"$NAME\"",
                 "--initial-advertise-peer-urls \"$PEER_URL\"", "systemctl restart kubelet",
                 "endpoint health", "/readyz", "kube-controller-manager kube-scheduler"):
        assert step in text, step
    # the restore writes a new directory; only start swaps it in, then the manifests go back
    assert text.index("  restore)") < text.index('--data-dir "$restored"') < text.index("  start)") \
        < text.index('mv "$restored" "$data"') < text.index("    put_back\n    systemctl restart kubelet")


def test_the_default_backup_directory_is_ignored_by_git(tmp_path):
    """A snapshot holds every Secret of the cluster: run from the repository (or
    scripts/), the default output must never show up in `git status`."""
    import subprocess
    from pathlib import Path

    import backup
    root = Path(__file__).resolve().parents[1]
    out = backup.default_out("lab")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text((root / ".gitignore").read_text())
    for where in (tmp_path, tmp_path / "scripts"):
        check = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", "--no-index", "-q",
                                str(where / out / "etcd-20270101T000000Z-cp1.db")])
        assert check.returncode == 0, f"{where / out} is not ignored by .gitignore"
