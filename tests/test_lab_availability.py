"""Why the SSH lab cannot run, said before any node starts (pure checks, no root)."""
import socket

from lab.nodes import _port_taken_reason, visible_in_nodes


def test_a_python_under_home_is_not_visible_in_the_nodes_even_through_a_link():
    # A CI checkout's venv: /home/runner/work/.../venv/bin/python links to /opt/...
    assert not visible_in_nodes("/home/runner/work/repo/repo/venv/bin/python")
    assert not visible_in_nodes("/root/.pyenv/versions/3.11.7/bin/python3")
    assert visible_in_nodes("/opt/hostedtoolcache/Python/3.11.9/x64/bin/python3")


def test_a_server_on_every_address_takes_the_port_from_the_nodes():
    with socket.socket() as wildcard:
        wildcard.bind(("0.0.0.0", 0))
        wildcard.listen()
        port = wildcard.getsockname()[1]
        reason = _port_taken_reason("127.0.200.250", port)
        assert reason and f"port {port} of 127.0.200.250" in reason
        assert "systemctl stop ssh.socket ssh.service" in reason
    assert _port_taken_reason("127.0.200.250", port) is None


PROBE_RECORDER = '''
import os, socket
_bind = socket.socket.bind
def bind(self, address):
    if isinstance(address, tuple) and address[1] == 22:
        with open(os.environ["PROBE_LOG"], "a") as log:
            log.write(f"bind {address}\\n")
    return _bind(self, address)
socket.socket.bind = bind
'''


def test_a_run_without_lab_tests_does_not_probe_for_the_lab(tmp_path):
    """`-m "not lab"` as root: no `unshare`, no bind of port 22 (the probe would
    otherwise run when the lab fixtures are imported)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    log = tmp_path / "probes.log"
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "unshare").write_text(f'#!/bin/sh\necho "unshare $*" >> {log}\nexit 1\n')
    (fake_bin / "unshare").chmod(0o755)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(PROBE_RECORDER)
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}", "PROBE_LOG": str(log),
           "PYTHONPATH": str(tmp_path / "site")}
    env.pop("KSERVE_LAB_REQUIRED", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-m", "not lab", "tests/test_lab_changes.py", "tests/test_lab_harness.py"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert "deselected" in done.stdout, done.stdout + done.stderr
    assert not log.exists(), log.read_text()


def test_the_lab_probe_runs_only_for_a_lab_test(monkeypatch):
    """On any machine: importing the fixtures probes nothing; a plain test's setup
    probes nothing; the first lab test's setup probes once."""
    import importlib
    from types import SimpleNamespace

    import pytest
    from lab import fixtures, nodes

    calls = []
    monkeypatch.setattr(nodes, "unavailable_reason", lambda: calls.append(1) or "no lab here")
    monkeypatch.delenv("KSERVE_LAB_REQUIRED", raising=False)
    reloaded = importlib.reload(fixtures)
    try:
        assert calls == []
        plain = SimpleNamespace(get_closest_marker=lambda name: None)
        reloaded.pytest_runtest_setup(plain)
        assert calls == []
        lab_test = SimpleNamespace(get_closest_marker=lambda name: name == "lab" or None)
        for _ in range(2):
            with pytest.raises(pytest.skip.Exception, match="SSH lab unavailable: no lab here"):
                reloaded.pytest_runtest_setup(lab_test)
        assert calls == [1]
    finally:
        monkeypatch.undo()
        importlib.reload(fixtures)


def test_no_network_namespaces_fails_the_bastion_test_where_the_lab_is_required(monkeypatch, tmp_path):
    """tests/test_lab_preflight.py's bastion test follows the lab's verdict: without
    network namespaces it skips with the reason, and fails with KSERVE_LAB_REQUIRED=1."""
    import pytest
    from test_lab_preflight import netns_unavailable_reason, require_netns
    monkeypatch.setenv("PATH", str(tmp_path))  # no `ip`
    reason = netns_unavailable_reason()
    assert reason == "network namespaces: no `ip` (iproute2) on PATH"
    monkeypatch.delenv("KSERVE_LAB_REQUIRED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no `ip`"):
        require_netns(reason)
    monkeypatch.setenv("KSERVE_LAB_REQUIRED", "1")
    with pytest.raises(pytest.fail.Exception, match="no `ip` .* but KSERVE_LAB_REQUIRED=1"):
        require_netns(reason)
    require_netns(None)  # available: runs
