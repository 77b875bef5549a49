"""preflight.py against ports where no SSH server answers: one line per node that
says where and what to check, and none of paramiko's own log output."""
import http.server
import os
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import paramiko
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from components.preflight.ssh import HopError, describe_error

ROOT = Path(__file__).resolve().parents[1]
HINT = "check the address, the port and any firewall"


class _Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    """A real HTTP server on loopback: it answers paramiko's banner with a 400 page."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _closing_server(reset: bool):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if reset:  # close with RST instead of FIN
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener, stop


@pytest.fixture(params=["closes", "resets"])
def closing_port(request):
    """A TCP server that accepts each connection and closes it at once."""
    listener, stop = _closing_server(reset=request.param == "resets")
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


@pytest.fixture
def key_file(tmp_path):
    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption())
    path = tmp_path / "id_test"
    path.write_bytes(key)
    path.chmod(0o600)
    return path


def preflight(tmp_path, key_file, port, *extra):
    stacks = tmp_path / "stacks"
    stacks.mkdir(exist_ok=True)
    config = {"kserve-cluster:nodes": [{"name": "cp1", "address": "127.0.0.1", "role": "control-plane",
                                        "ssh": {"port": port}}],
              "kserve-cluster:ssh": {"user": "ubuntu"}}
    (stacks / "Pulumi.notssh.yaml").write_text(yaml.safe_dump({"config": config}))
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "preflight.py"), "--stack", "notssh",
                           "--stacks-dir", str(stacks), "--key-file", str(key_file), *extra],
                          env=env, capture_output=True, text=True, timeout=120)


def assert_one_clean_line(result, port):
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "Exception (client)" not in output, output
    assert "paramiko" not in output and "protocol banner" not in output, output
    lines = [line for line in output.splitlines() if HINT in line]
    assert len(lines) == 1, output
    assert f"no SSH server answers at 127.0.0.1:{port}" in lines[0]
    assert lines[0].startswith("cp1 (127.0.0.1)"), lines[0]


def test_an_http_server_is_named_as_not_ssh(tmp_path, key_file, http_port):
    result = preflight(tmp_path, key_file, http_port)
    assert result.returncode == 1
    assert_one_clean_line(result, http_port)
    assert "preflight FAILED" in result.stdout


def test_a_port_that_accepts_and_closes_is_named_as_not_ssh(tmp_path, key_file, closing_port):
    result = preflight(tmp_path, key_file, closing_port)
    assert result.returncode == 1
    assert_one_clean_line(result, closing_port)


def test_trust_says_the_same_in_one_line(tmp_path, key_file, http_port):
    result = preflight(tmp_path, key_file, http_port, "--trust")
    assert result.returncode == 1
    assert_one_clean_line(result, http_port)
    assert "pinned" not in result.stdout


def test_a_closed_port_is_refused_with_the_address(tmp_path, key_file):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = preflight(tmp_path, key_file, port)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert f"SSH connection refused by 127.0.0.1:{port}: is sshd running" in output


@pytest.mark.parametrize("error, words", [
    (paramiko.SSHException("Error reading SSH protocol banner"), "no SSH server answers at 10.0.0.5:22"),
    (EOFError(), "no SSH server answers at 10.0.0.5:22"),
    (ConnectionResetError(104, "Connection reset by peer"), "no SSH server answers at 10.0.0.5:22"),
    (socket.timeout("timed out"), "no answer from 10.0.0.5:22 within 10s"),
    (paramiko.AuthenticationException("Authentication failed."), "SSH login refused by 10.0.0.5:22"),
    (paramiko.ChannelException(2, "Connect failed"), "the bastion could not reach 10.0.0.5:22"),
    (OSError(113, "No route to host"), "no route to 10.0.0.5:22 from here"),
    (paramiko.SSHException("Incompatible ssh peer (no acceptable kex algorithm)"),
     "SSH to 10.0.0.5:22 failed (Incompatible ssh peer"),
])
def test_every_failure_names_the_hop_and_what_to_check(error, words):
    message = describe_error(HopError("10.0.0.5:22", error))
    assert words in message
    assert "\n" not in message
