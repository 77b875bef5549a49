"""scripts/predict.py asks a TorchServe model by the name in its model_snapshot,
with a request body of the user's own (--data), as KServe's wrapper expects."""
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import predict
from components.serving.endpoints import from_stack

ROOT = Path(__file__).resolve().parents[1]
HOST = "torchserve.kserve-test.example.com"


class TorchServeHandler(BaseHTTPRequestHandler):
    """The kserve-torchserve runtime behind the ingress: the InferenceService's
    host, the model_snapshot's name in the path; it adds up each instance."""
    received: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        TorchServeHandler.received.append((self.headers["Host"], self.path, body))
        if (self.headers["Host"], self.path) != (HOST, "/v1/models/adder:predict"):
            status, answer = 404, {"error": "Model with name torchserve does not exist."}
        else:
            status, answer = 200, {"predictions": [sum(row) for row in body["instances"]]}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), TorchServeHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def run(*args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_the_stack_file_gives_the_served_name():
    endpoint = from_stack("torchserve-example", None)
    assert (endpoint.base_url, endpoint.host, endpoint.served_name, endpoint.name) == (
        "http://10.0.2.21:31903", HOST, "adder", "torchserve")
    assert from_stack("torchserve-example", "kserve-test/torchserve").served_name == "adder"


def test_data_is_sent_as_is_to_the_served_name(server):
    result = run("--stack", "torchserve-example", "--url", server,
                 "--data", "examples/torchserve/request.json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"predictions": [6, 0.75]}
    host, path, body = TorchServeHandler.received[-1]
    assert (host, path) == (HOST, "/v1/models/adder:predict")
    assert body == json.loads((ROOT / "examples/torchserve/request.json").read_text())


def test_the_inference_service_name_is_not_the_served_name(server):
    result = run("--url", server, "--host", HOST, "--model", "torchserve",
                 "--data", "examples/torchserve/request.json")
    assert result.returncode == predict.EXIT_NOT_FOUND


def test_data_that_is_not_json_is_refused(server, tmp_path):
    bad = tmp_path / "request.json"
    bad.write_text("instances: [1, 2]")
    result = run("--stack", "torchserve-example", "--url", server, "--data", str(bad))
    assert result.returncode == predict.EXIT_USAGE and f"--data {bad} is not JSON" in result.stderr
    both = run("--stack", "torchserve-example", "--url", server, "--data", str(bad), "x.jpg")
    assert both.returncode == predict.EXIT_USAGE and "not both" in both.stderr
