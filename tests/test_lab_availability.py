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
        reason = _port_taken_reason("127.0.11.250", port)
        assert reason and f"port {port} of 127.0.11.250" in reason
        assert "systemctl stop ssh.socket ssh.service" in reason
    assert _port_taken_reason("127.0.11.250", port) is None
