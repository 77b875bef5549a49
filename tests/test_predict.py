"""scripts/predict.py against a real HTTP server on loopback that speaks the V1 protocol."""
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

import predict
from components.access.ingress_policies import https_only_reply
from components.serving.endpoints import from_stack
from components import versions
from components.serving.v1_protocol import SMOKE_IMAGE_JPEG, build_request, parse_predictions
from access_fixtures import expires_in

ROOT = Path(__file__).resolve().parents[1]
HOST = "tf-flower.kserve-test.example.com"
SCORES = [0.91, 0.02, 0.03, 0.01, 0.02, 0.01]


class V1Handler(BaseHTTPRequestHandler):
    """tf-flower behind an ingress: routes on Host, knows one ready model."""
    models = {"tf-flower": "ready", "sleepy": "not-ready", "slow": "slow", "guarded": "ready",
              "locked": "ready"}
    received: list = []
    # What the ingress gateway answers for a model in a project (Istio's bodies).
    good_token, expired_token = "good.token.sig", "expired.token.sig"

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _text(self, status, text):
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        payload = json.loads(self.rfile.read(length))
        V1Handler.received.append((self.headers["Host"], self.path, payload))
        name = self.path.removeprefix("/v1/models/").removesuffix(":predict")
        if self.headers["Host"] != f"{name}.kserve-test.example.com" or name not in self.models:
            return self._answer(404, {"error": f"Model with name {name} does not exist."})
        if name == "guarded":
            auth = self.headers.get("Authorization")
            if auth == f"Bearer {self.expired_token}":
                return self._answer(401, {"error": "Jwt is expired"})
            if auth != f"Bearer {self.good_token}":
                return self._answer(403, {"error": "RBAC: access denied"})
        if name == "locked":
            # A protected model of a Serverless stack, called on the HTTP port: the gateway's
            # 403 with the body its local reply mapper gives (ingress_policies.py).
            return self._text(403, https_only_reply(31904).replace("%LOCAL_REPLY_BODY%",
                              "RBAC: access denied").replace("%REQ(:AUTHORITY)%",
                                                             self.headers["Host"]))
        if self.models[name] == "not-ready":
            return self._answer(503, {"error": f"Model with name {name} is not ready."})
        if self.models[name] == "slow":
            time.sleep(2)
        instance = payload["instances"][0]
        base64.b64decode(instance["image_bytes"]["b64"], validate=True)
        return self._answer(200, {"predictions": [
            {"scores": SCORES, "prediction": 0, "key": instance["key"]}]})


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), V1Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "flower.jpg"
    path.write_bytes(SMOKE_IMAGE_JPEG)
    return path


def run(*args, env=None):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), *args],
                          capture_output=True, text=True, timeout=60, env=env)


def test_prediction_printed_with_class_and_scores(server, image):
    V1Handler.received.clear()
    result = run("--url", server, "--host", HOST, "--model", "tf-flower", str(image))
    assert result.returncode == 0, result.stderr
    assert "class 0 (91.0%)" in result.stdout
    assert "0.9100 0.0200 0.0300 0.0100 0.0200 0.0100" in result.stdout
    host, path, payload = V1Handler.received[-1]
    assert (host, path) == (HOST, "/v1/models/tf-flower:predict")
    instance = payload["instances"][0]
    assert set(instance) == {"image_bytes", "key"}
    assert base64.b64decode(instance["image_bytes"]["b64"]) == SMOKE_IMAGE_JPEG


def test_a_model_given_as_namespace_slash_name_is_asked_for_by_its_name(server, image):
    """--url/--host/--model NS/NAME: the path has NAME only, as the load test's."""
    V1Handler.received.clear()
    result = run("--url", server, "--host", HOST, "--model", "kserve-test/tf-flower", str(image))
    assert result.returncode == 0, result.stderr
    host, path, _ = V1Handler.received[-1]
    assert (host, path) == (HOST, "/v1/models/tf-flower:predict")
    assert "kserve-test/tf-flower" in result.stdout

def test_json_output(server, image):
    result = run("--url", server, "--host", HOST, "--model", "tf-flower", "--json", str(image))
    assert json.loads(result.stdout)["predictions"][0]["scores"] == SCORES


def test_unreachable_gateway(image):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens
    result = run("--url", f"http://127.0.0.1:{port}", "--host", HOST, "--model", "tf-flower", str(image))
    assert result.returncode == predict.EXIT_UNREACHABLE
    assert "cannot reach the ingress gateway" in result.stderr


def test_model_not_found(server, image):
    result = run("--url", server, "--host", HOST, "--model", "no-such-model", str(image))
    assert result.returncode == predict.EXIT_NOT_FOUND
    assert "not found (HTTP 404" in result.stderr and "does not exist" in result.stderr


def test_wrong_host_header_is_a_404(server, image):
    result = run("--url", server, "--host", "tf-flower.kserve-test.svc.cluster.local",
                 "--model", "tf-flower", str(image))
    assert result.returncode == predict.EXIT_NOT_FOUND
    assert "config-domain" in result.stderr


def test_model_not_ready(server, image):
    result = run("--url", server, "--host", "sleepy.kserve-test.example.com", "--model", "sleepy",
                 str(image))
    assert result.returncode == predict.EXIT_NOT_READY
    assert "not ready (HTTP 503" in result.stderr


def test_timeout(server, image):
    result = run("--url", server, "--host", "slow.kserve-test.example.com", "--model", "slow",
                 "--timeout", "0.5", str(image))
    assert result.returncode == predict.EXIT_TIMEOUT
    assert "within 0.5s" in result.stderr


def test_missing_image_file(server, tmp_path):
    result = run("--url", server, "--host", HOST, "--model", "tf-flower", str(tmp_path / "nope.jpg"))
    assert result.returncode == predict.EXIT_USAGE, result.stderr
    assert f"IMAGE {tmp_path / 'nope.jpg'}: cannot read it" in result.stderr


def test_usage_errors_exit_6_as_documented_not_2_the_unreachable_gateway(image):
    """argparse's own status 2 would read as "gateway unreachable"."""
    nowhere = run(str(image))
    assert nowhere.returncode == predict.EXIT_USAGE == 6
    assert "give --stack, or all of --url, --host and --model" in nowhere.stderr
    unknown = run("--stack", "lab", "--no-such-option")
    assert unknown.returncode == 6 and "unrecognized arguments: --no-such-option" in unknown.stderr
    helped = run("--help")
    assert helped.returncode == 0 and "Exit status" in helped.stdout and "6 bad arguments" in helped.stdout


def test_stack_file_gives_address_port_and_host():
    endpoint = from_stack("lab", None)
    assert (endpoint.base_url, endpoint.host, endpoint.served_name) == (
        "http://10.0.2.21:31903", HOST, "tf-flower")


def test_sample_image_taken_from_the_wheel_and_cached(tmp_path):
    calls = []

    def fake_download(directory):
        calls.append(directory)
        wheel = directory / "scikit_learn-0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(versions.SAMPLE_IMAGE_PATH_IN_WHEEL, SMOKE_IMAGE_JPEG)
        return wheel

    path = predict.sample_image(tmp_path / "cache", download=fake_download)
    assert path.read_bytes() == SMOKE_IMAGE_JPEG and path.name == "flower.jpg"
    assert predict.sample_image(tmp_path / "cache", download=fake_download) == path
    assert len(calls) == 1  # the second call used the cache


def test_request_and_answer_shapes():
    request = build_request(b"\xff\xd8jpeg", key="7")
    assert request == {"instances": [{"image_bytes": {"b64": "/9hqcGVn"}, "key": "7"}]}
    [prediction] = parse_predictions({"predictions": [{"scores": [0.1, 0.7, 0.2], "key": "7"}]})
    assert prediction.class_index == 1 and prediction.confidence == 0.7
    with pytest.raises(ValueError):
        parse_predictions({"error": "Model with name x does not exist."})


# The fake gateway speaks plain http: these tests are about the token, not the transport
# (tests/test_client_tls.py is).
GUARDED = ("--host", "guarded.kserve-test.example.com", "--model", "guarded", "--insecure-token-over-http")


def test_a_token_from_a_file_is_sent_as_bearer_and_never_printed(server, image, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(V1Handler.good_token + "\n")
    V1Handler.received.clear()
    result = run("--url", server, *GUARDED, "--token-file", str(token_file), str(image))
    assert result.returncode == 0, result.stderr
    assert V1Handler.good_token not in result.stdout + result.stderr


def test_a_token_from_the_environment(server, image):
    env = {**os.environ, "KSERVE_TOKEN": V1Handler.good_token}
    assert run("--url", server, *GUARDED, str(image), env=env).returncode == 0


def test_no_token_for_a_protected_model_is_a_clear_403(server, image):
    env = {k: v for k, v in os.environ.items() if k != "KSERVE_TOKEN"}
    result = run("--url", server, *GUARDED, str(image), env=env)
    assert result.returncode == predict.EXIT_UNAUTHORIZED
    assert "denied (HTTP 403" in result.stderr and "no token was sent" in result.stderr
    assert "--token-file" in result.stderr


def test_a_token_of_another_project_is_a_clear_403(server, image):
    result = run("--url", server, *GUARDED, "--token", "other.project.token", str(image))
    assert result.returncode == predict.EXIT_UNAUTHORIZED
    assert "not one of this model's project" in result.stderr
    assert "other.project.token" not in result.stderr


def test_a_403_over_plain_http_from_the_https_only_gateway_says_use_https(server, image):
    locked = ("--host", "locked.kserve-test.example.com", "--model", "locked")
    result = run("--url", server, *locked, "--token", V1Handler.good_token,
                 "--insecure-token-over-http", str(image))
    assert result.returncode == predict.EXIT_UNAUTHORIZED
    assert "denied (HTTP 403" in result.stderr and ": use https:" in result.stderr
    assert "ingressHttpsPort" in result.stderr and "--ca-file" in result.stderr
    assert "went over the network in clear" in result.stderr
    assert "not one of this model's project" not in result.stderr  # not the token's fault
    assert V1Handler.good_token not in result.stderr


def test_any_403_over_plain_http_mentions_https_for_serverless(server, image):
    result = run("--url", server, *GUARDED, "--token", "other.project.token", str(image))
    assert "not one of this model's project" in result.stderr
    assert "use https" in result.stderr


def test_an_expired_token_is_a_clear_401(server, image):
    result = run("--url", server, *GUARDED, "--token", V1Handler.expired_token, str(image))
    assert result.returncode == predict.EXIT_UNAUTHORIZED
    assert "refused the token (HTTP 401" in result.stderr and "tokens --show-secrets" in result.stderr


def test_an_empty_token_file_is_refused(server, image, tmp_path):
    (tmp_path / "token").write_text("\n")
    result = run("--url", server, *GUARDED, "--token-file", str(tmp_path / "token"), str(image))
    assert result.returncode == predict.EXIT_USAGE and "is empty" in result.stderr


def test_a_stack_model_in_a_project_needs_a_token_before_anything_is_sent(tmp_path, image):
    stack = {"config": {
        "kserve-cluster:nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}],
        "kserve-cluster:projects": [{"name": "team-a", "tokens": [{"name": "ci", "expires": expires_in(300)}]}],
        "kserve-cluster:models": [
            {"name": "tf-flower", "namespace": "team-a", "format": "tensorflow",
             "storageUri": "gs://kfserving-examples/models/tensorflow/flowers"},
            {"name": "open", "namespace": "team-a", "format": "tensorflow", "public": True,
             "storageUri": "gs://kfserving-examples/models/tensorflow/flowers"}]}}
    (tmp_path / "Pulumi.teams.yaml").write_text(yaml.safe_dump(stack))
    assert from_stack("teams", None, tmp_path).project == "team-a"
    assert from_stack("teams", "open", tmp_path).project is None
    env = {k: v for k, v in os.environ.items() if k != "KSERVE_TOKEN"}
    result = run("--stack", "teams", "--stacks-dir", str(tmp_path), str(image), env=env)
    assert result.returncode == predict.EXIT_UNAUTHORIZED
    assert "is in project team-a and needs one of its tokens" in result.stderr
    assert "cannot reach" not in result.stderr  # refused before any request
