"""A worker that leaves the stack is reset from this machine, or only warned
about when it does not answer (components/cluster/leave.py, scripts/reset_node.py):
the decisions, with stand-ins for the SSH connection. The lab runs it for real
(tests/test_lab_changes.py)."""
import io
import json
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from components.cluster import leave
from components.preflight.ssh import HostKeyMismatch
from components.stack_config import Bastion, Node, SshSettings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
NODE = Node("worker3", "10.0.2.24", "worker", ssh_user="ubuntu", host_key="ssh-ed25519 AAAA")
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n"


def document(key=KEY, bastion=None):
    return leave.leave_document(NODE, SshSettings(user="ubuntu", bastion=bastion), key)


def test_the_document_round_trips_node_bastion_and_key():
    bastion = Bastion("10.0.2.5", 2222, "jump", "ssh-ed25519 BBBB")
    node, ssh, key = leave.parse_leave_document(document(bastion=bastion))
    assert node == NODE and ssh.bastion == bastion and key == KEY and not ssh.use_agent
    node, ssh, key = leave.parse_leave_document(document(key=None))
    assert key is None and ssh.use_agent
    with pytest.raises(ValueError, match="not a leave document"):
        leave.parse_leave_document("{}")


class Dialer:
    """connect() as components/preflight/ssh.py's: fails `failures` times, then connects."""

    def __init__(self, failures=0, error=None):
        self.failures, self.error, self.dials = failures, error, 0

    @contextmanager
    def __call__(self, node, ssh, creds):
        self.dials += 1
        if self.dials <= self.failures:
            raise self.error or ConnectionRefusedError(111, "Connection refused")
        yield "client", "ssh-ed25519 AAAA"


def reset(text, dialer, status=0, attempts=3):
    said, ran, slept = [], [], []

    def run(client, command, timeout):
        ran.append(command)
        return status, "", "kubeadm: boom" if status else ""
    code = leave.reset_leaving_node(text, said.append, connect=dialer, run=run,
                                    attempts=attempts, pause=5, sleep=slept.append)
    return code, said, ran, slept


def test_a_reachable_worker_is_reset():
    code, said, ran, slept = reset(document(), Dialer())
    assert code == 0 and ran == [leave.reset_command(NODE)] and slept == []
    assert "reset.sh" in ran[0] and "LOGIN_USER=ubuntu" in ran[0]
    assert not any("WARNING" in line for line in said)


def test_a_worker_that_answers_on_the_second_dial_is_reset():
    code, _, ran, slept = reset(document(), Dialer(failures=1))
    assert code == 0 and len(ran) == 1 and slept == [5]


def test_an_unreachable_worker_is_warned_about_after_a_bounded_number_of_dials():
    dialer = Dialer(failures=99, error=socket.timeout("timed out"))
    code, said, ran, slept = reset(document(), dialer)
    assert code == 0 and ran == []
    assert dialer.dials == leave.ATTEMPTS and slept == [5] * (leave.ATTEMPTS - 1)
    warning = said[-1]
    assert warning.startswith("WARNING: worker3 (10.0.2.24) did not answer 3 SSH attempts")
    assert "kubeadm reset" in warning and "no answer from" in warning
    assert KEY not in "".join(said)


def test_a_different_machine_at_the_address_is_not_reset():
    error = HostKeyMismatch("worker3 (10.0.2.24)", "SHA256:a", "SHA256:b", "worker3")
    code, said, ran, _ = reset(document(), Dialer(failures=99, error=error))
    assert code == 0 and ran == [] and "WARNING: worker3 was not reset: host key mismatch" in said[-1]


def test_a_reset_that_runs_and_fails_fails_the_step():
    code, said, ran, _ = reset(document(), Dialer(), status=1)
    assert code == 1 and len(ran) == 1 and "reset.sh failed (exit 1)" in said[-1]


def test_the_command_reads_its_document_on_stdin(monkeypatch, capsys):
    import reset_node
    assert reset_node.main(io.StringIO("not json")) == 2
    assert "not a leave document" in capsys.readouterr().err
    seen = []
    monkeypatch.setattr(reset_node, "reset_leaving_node", lambda text, say: seen.append(json.loads(text)) or 0)
    assert reset_node.main(io.StringIO(document())) == 0
    assert seen[0]["node"]["name"] == "worker3"


def test_a_control_planes_removals_run_before_its_reset_and_a_failure_still_resets():
    text = leave.leave_document(NODE, SshSettings(user="ubuntu"), KEY,
                                before=["etcd-backup-remove.sh", "ha-endpoint-remove.sh"])
    assert leave.leave_steps(text) == ["etcd-backup-remove.sh", "ha-endpoint-remove.sh"]
    assert leave.leave_steps(document()) == []  # a worker's document is as it was
    assert "before" not in json.loads(document())
    ran, said = [], []

    @contextmanager
    def connected():
        yield object(), None

    def run(client, command, timeout):
        ran.append(command.split("' ")[-1])
        return (1, "", "haproxy is not here") if "ha-endpoint-remove" in command else (0, "", "")

    status = leave.reset_leaving_node(text, said.append, connect=lambda *a: connected(), run=run)
    assert ran == ["etcd-backup-remove.sh", "ha-endpoint-remove.sh", "reset.sh"]
    assert status == 1 and any("ha-endpoint-remove.sh failed (exit 1)" in s for s in said)
