"""scripts/node/smoke-predict.sh sends a model's token from stdin as a bearer
header (never on a command line), against a real HTTP server on loopback."""
import json
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.cluster.node_scripts import script_text

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
BODY = json.dumps({"instances": [{"image_bytes": {"b64": "AAAA"}, "key": "smoke"}]})


class Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        data = self.rfile.read(int(self.headers["Content-Length"])).decode()
        Recorder.seen.append((dict(self.headers), data))
        answer = json.dumps({"predictions": [{"scores": [1.0], "key": "smoke"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture(scope="module")
def url():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1/models/m:predict"
    httpd.shutdown()


def smoke(url, stdin, **env):
    return subprocess.run(["bash", "-c", script_text("smoke-predict.sh"), "smoke-predict.sh"],
                          input=stdin, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "URL": url, "HOST_HEADER": "m.team-a.example.com",
                               "ATTEMPTS": "1", **env})


def test_the_token_on_the_first_line_of_stdin_becomes_the_bearer_header(url):
    Recorder.seen.clear()
    result = smoke(url, f"secret-token-value\n{BODY}", TOKEN_ON_STDIN="1")
    assert result.returncode == 0, result.stderr
    [(headers, body)] = Recorder.seen
    assert headers["Authorization"] == "Bearer secret-token-value"
    assert headers["Host"] == "m.team-a.example.com"
    assert body == BODY  # the token line is not part of the request
    assert "secret-token-value" not in result.stdout + result.stderr


def test_without_a_token_no_authorization_header_is_sent(url):
    Recorder.seen.clear()
    result = smoke(url, BODY)
    assert result.returncode == 0, result.stderr
    [(headers, body)] = Recorder.seen
    assert "Authorization" not in headers and body == BODY
