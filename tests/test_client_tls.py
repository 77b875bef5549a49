"""predict.py and loadtest.py over https, against loopback TLS servers with a CA made
here: the certificate is checked (for the model's host, with the CA given), the token
goes over https only, an http URL with a token is refused without
--insecure-token-over-http, and a redirect to another host carries no Authorization."""
import json
import os
import subprocess
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

import predict
from access_fixtures import expires_in
from components.serving import endpoints
from tls_fixtures import ca_pem, http_server, https_server, make_ca

ROOT = Path(__file__).resolve().parents[1]
HOST = "iris.team-a.example.com"
TOKEN = "header.payload.signature"
ANSWER = {"predictions": [{"scores": [0.9, 0.1], "prediction": 0, "key": "1"}]}


class Gateway(BaseHTTPRequestHandler):
    """Records (scheme, method, path, Host, Authorization); answers a prediction, or
    redirects when `redirect_to` is set."""
    seen: list = []
    redirect_to = None

    def log_message(self, *args):
        pass

    def _handle(self):
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
        scheme = "https" if hasattr(self.connection, "cipher") else "http"
        type(self).seen.append((scheme, self.command, self.path, self.headers.get("Host"),
                                self.headers.get("Authorization")))
        if type(self).redirect_to:
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _handle


class Elsewhere(Gateway):
    seen: list = []
    redirect_to = None


@pytest.fixture
def pki(tmp_path):
    ca, other = make_ca("stack CA"), make_ca("someone else's CA")
    (tmp_path / "ca.pem").write_bytes(ca_pem(ca))
    (tmp_path / "other.pem").write_bytes(ca_pem(other))
    (tmp_path / "image.jpg").write_bytes(b"\xff\xd8jpeg")
    Gateway.seen, Gateway.redirect_to, Elsewhere.seen = [], None, []
    return ca, tmp_path


def run(script, *args, env=None):
    env = {k: v for k, v in (env or os.environ).items() if k not in ("KSERVE_TOKEN", "KSERVE_CA_FILE")}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args],
                          capture_output=True, text=True, timeout=120, env=env)


def predict_args(url, tmp, *more):
    return ("--url", url, "--host", HOST, "--model", "iris", "--token", TOKEN, "--json", *more,
            str(tmp / "image.jpg"))


# ------------------------------------------------------------------ predict.py

def test_predict_sends_the_token_over_https_checked_against_the_ca(pki):
    ca, tmp = pki
    # The certificate names the model's host only: it is checked against the Host header
    # (the TLS server name), not the address dialed.
    with https_server(Gateway, ca, [HOST], tmp) as url:
        result = run("predict.py", *predict_args(url, tmp, "--ca-file", str(tmp / "ca.pem")))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ANSWER
    assert Gateway.seen == [("https", "POST", "/v1/models/iris:predict", HOST, f"Bearer {TOKEN}")]


def test_the_ca_file_may_come_from_the_environment(pki):
    ca, tmp = pki
    with https_server(Gateway, ca, [HOST], tmp) as url:
        env = {**os.environ}
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"),
                                 *predict_args(url, tmp)], capture_output=True, text=True,
                                timeout=60, env={**env, "KSERVE_CA_FILE": str(tmp / "ca.pem")})
    assert result.returncode == 0, result.stderr


def test_a_wrong_ca_fails_clearly_and_the_token_is_not_sent(pki):
    ca, tmp = pki
    with https_server(Gateway, ca, [HOST], tmp) as url:
        result = run("predict.py", *predict_args(url, tmp, "--ca-file", str(tmp / "other.pem")))
    assert result.returncode == predict.EXIT_TLS == 8, result.stderr
    assert "certificate" in result.stderr and "not trusted for iris.team-a.example.com" in result.stderr
    assert "--ca-file" in result.stderr and "ingressCaCertificate" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert Gateway.seen == []


def test_a_certificate_for_another_name_fails(pki):
    ca, tmp = pki
    with https_server(Gateway, ca, ["other.team-b.example.com"], tmp) as url:
        result = run("predict.py", *predict_args(url, tmp, "--ca-file", str(tmp / "ca.pem")))
    assert result.returncode == 8 and "not trusted for iris.team-a.example.com" in result.stderr
    assert Gateway.seen == []


def test_a_ca_file_that_is_not_a_certificate_is_a_usage_error(pki):
    ca, tmp = pki
    (tmp / "junk.pem").write_text("not a certificate\n")
    result = run("predict.py", *predict_args("https://127.0.0.1:1", tmp, "--ca-file", str(tmp / "junk.pem")))
    assert result.returncode == 6 and "holds no PEM certificate" in result.stderr
    result = run("predict.py", *predict_args("https://127.0.0.1:1", tmp, "--ca-file", str(tmp / "none.pem")))
    assert result.returncode == 6 and "cannot read the CA file" in result.stderr


def test_a_token_over_plain_http_is_refused_unless_asked_for(pki):
    _, tmp = pki
    with http_server(Gateway) as url:
        refused = run("predict.py", *predict_args(url, tmp))
        assert refused.returncode == 6, refused.stderr
        assert "refusing to send a token over plain http" in refused.stderr
        assert "--insecure-token-over-http" in refused.stderr and "--ca-file" in refused.stderr
        assert TOKEN not in refused.stdout + refused.stderr
        assert Gateway.seen == []  # nothing was sent
        allowed = run("predict.py", *predict_args(url, tmp, "--insecure-token-over-http"))
    assert allowed.returncode == 0, allowed.stderr
    assert Gateway.seen == [("http", "POST", "/v1/models/iris:predict", HOST, f"Bearer {TOKEN}")]


def test_a_public_model_over_http_needs_no_flag(pki):
    _, tmp = pki
    with http_server(Gateway) as url:
        result = run("predict.py", "--url", url, "--host", HOST, "--model", "iris", "--json",
                     str(tmp / "image.jpg"))
    assert result.returncode == 0, result.stderr
    assert Gateway.seen[0][4] is None


def test_a_redirect_to_another_host_carries_no_authorization(pki):
    ca, tmp = pki
    with http_server(Elsewhere) as elsewhere, https_server(Gateway, ca, [HOST], tmp) as url:
        # Same port and scheme, another host name: another origin.
        Gateway.redirect_to = elsewhere.replace("127.0.0.1", "localhost")
        answer = predict.predict(url, HOST, "iris", b"\xff\xd8", token=TOKEN, ca_file=tmp / "ca.pem")
    assert answer == ANSWER
    assert Gateway.seen[0][4] == f"Bearer {TOKEN}"
    [(_, method, path, host, authorization)] = Elsewhere.seen
    assert (method, path, authorization) == ("GET", "/v1/models/iris:predict", None)
    assert host != HOST  # the model's Host header stays behind too


def test_urllibs_own_handler_would_have_forwarded_it():
    """Why SameHostRedirects exists: urllib copies Authorization to the new URL."""
    from components.serving.transport import SameHostRedirects
    request = urllib.request.Request("http://127.0.0.1:1/a", headers={"Authorization": "Bearer x"})
    forwarded = urllib.request.HTTPRedirectHandler().redirect_request(
        request, None, 302, "Found", {}, "http://other.example/b")
    assert forwarded.get_header("Authorization") == "Bearer x"
    ours = SameHostRedirects().redirect_request(request, None, 302, "Found", {}, "http://other.example/b")
    assert ours.get_header("Authorization") is None
    same = SameHostRedirects().redirect_request(request, None, 302, "Found", {}, "http://127.0.0.1:1/c")
    assert same.get_header("Authorization") == "Bearer x"
    for elsewhere in ("https://127.0.0.1:1/c", "http://127.0.0.1:2/c"):  # scheme, port
        moved = SameHostRedirects().redirect_request(request, None, 302, "Found", {}, elsewhere)
        assert moved.get_header("Authorization") is None


# ------------------------------------------------------------------ loadtest.py

def loadtest_args(url, tmp, *more):
    return ("team-a/iris", "--url", url, "--host", HOST, "--rate", "10", "--duration", "0.5",
            "--token", TOKEN, "--no-replicas", "--out", str(tmp / "out"), *more)


def test_loadtest_over_https_with_the_ca(pki):
    ca, tmp = pki
    with https_server(Gateway, ca, [HOST], tmp) as url:
        result = run("loadtest.py", *loadtest_args(url, tmp, "--ca-file", str(tmp / "ca.pem")))
    assert result.returncode == 0, result.stderr
    figures = json.loads((tmp / "out" / "figures.json").read_text())
    assert figures["requests"] == 5 and figures["errors"] == 0
    assert {s[:2] for s in Gateway.seen} == {("https", "POST")}
    assert {s[3:] for s in Gateway.seen} == {(HOST, f"Bearer {TOKEN}")}


def test_loadtest_with_a_wrong_ca_stops_before_the_test(pki):
    ca, tmp = pki
    with https_server(Gateway, ca, [HOST], tmp) as url:
        result = run("loadtest.py", *loadtest_args(url, tmp, "--ca-file", str(tmp / "other.pem")))
    assert result.returncode == 8, result.stderr
    assert "not trusted for iris.team-a.example.com" in result.stderr and "--ca-file" in result.stderr
    assert Gateway.seen == [] and not (tmp / "out").exists()
    assert TOKEN not in result.stdout + result.stderr


def test_loadtest_refuses_a_token_over_http_and_follows_no_redirect(pki):
    ca, tmp = pki
    with http_server(Elsewhere) as elsewhere, http_server(Gateway) as url:
        refused = run("loadtest.py", *loadtest_args(url, tmp))
        assert refused.returncode == 6 and "refusing to send a token over plain http" in refused.stderr
        assert Gateway.seen == [] and not (tmp / "out").exists()
        Gateway.redirect_to = elsewhere.replace("127.0.0.1", "localhost")
        redirected = run("loadtest.py", *loadtest_args(url, tmp, "--insecure-token-over-http"))
    assert redirected.returncode == 0, redirected.stderr
    assert Gateway.seen and Elsewhere.seen == []  # a 3xx is an error, never followed


# ------------------------------------------------------------------ --stack

def stack_file(tmp: Path, mode: str = "Serverless") -> None:
    stack = {"config": {
        "kserve-cluster:nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}],
        "kserve-cluster:serving": {"deploymentMode": mode},
        "kserve-cluster:projects": [{"name": "team-a", "tokens": [{"name": "ci", "expires": expires_in(300)}]}],
        "kserve-cluster:models": [
            {"name": "iris", "namespace": "team-a", "format": "sklearn", "storageUri": "gs://b/iris"},
            {"name": "open", "namespace": "team-a", "format": "sklearn", "public": True,
             "storageUri": "gs://b/iris"}]}}
    (tmp / "Pulumi.teams.yaml").write_text(yaml.safe_dump(stack))


def test_with_a_stack_a_protected_serverless_model_is_called_on_the_https_port(tmp_path):
    stack_file(tmp_path)
    assert endpoints.from_stack("teams", "iris", tmp_path).base_url == "https://10.0.2.21:31904"
    assert endpoints.from_stack("teams", "open", tmp_path).base_url == "http://10.0.2.21:31903"
    assert endpoints.from_stack("teams", "open", tmp_path, https=True).base_url == \
        "https://10.0.2.21:31904"
    assert endpoints.from_stack("teams", "iris", tmp_path).host == HOST


def test_with_a_raw_deployment_stack_the_token_goes_over_http_only_when_asked(tmp_path):
    """RawDeployment: KServe's Kubernetes Ingress has no TLS, the gateway serves http only."""
    stack_file(tmp_path, "RawDeployment")
    endpoint = endpoints.from_stack("teams", "iris", tmp_path)
    assert endpoint.base_url == "http://10.0.2.21:31903"
    (tmp_path / "image.jpg").write_bytes(b"\xff\xd8")
    result = run("predict.py", "--stack", "teams", "--stacks-dir", str(tmp_path), "--model", "iris",
                 "--token", TOKEN, str(tmp_path / "image.jpg"))
    assert result.returncode == 6 and "RawDeployment" in result.stderr
    assert "--insecure-token-over-http" in result.stderr and TOKEN not in result.stderr


def test_with_a_stack_a_model_that_needs_no_token_gets_none(tmp_path):
    """A token from the environment is not sent where the stack says none is needed (so
    it never travels over the public model's plain http)."""
    stack_file(tmp_path)
    Gateway.seen, Gateway.redirect_to = [], None
    (tmp_path / "image.jpg").write_bytes(b"\xff\xd8")
    with http_server(Gateway) as url:
        result = run("predict.py", "--stack", "teams", "--stacks-dir", str(tmp_path), "--model", "open",
                     "--url", url, "--token", TOKEN, "--json", str(tmp_path / "image.jpg"))
    assert result.returncode == 0, result.stderr
    assert "needs no token: none is sent" in result.stderr and TOKEN not in result.stderr
    assert Gateway.seen[0][4] is None
