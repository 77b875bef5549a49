"""The end-to-end suite's requests (tests/e2e/test_up_predict_destroy.py), built from
a mock-runtime stack's `models` and `tokens` outputs: a protected TorchServe model in a
project and a public TensorFlow model. The path, the Host header and the token must be
what the gateway and the model servers answer to, so that the suite, which nothing
here runs, cannot rot unseen."""
import http.server
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from components.offline.program import evaluate
from components.plan.outputs import settle
from test_program_features_together import PASSWORD, config as torchserve_config
from tls_fixtures import ca_pem, http_server, https_server, make_ca

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from predict import predict  # noqa: E402

spec = importlib.util.spec_from_file_location("e2e_suite", ROOT / "tests" / "e2e" / "test_up_predict_destroy.py")
e2e = importlib.util.module_from_spec(spec)
spec.loader.exec_module(e2e)

PUBLIC = {"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
          "storageUri": "gs://kfserving-examples/models/tensorflow/flowers"}


@pytest.fixture(scope="module")
def outputs():
    config = torchserve_config()
    config["models"] = config["models"] + [PUBLIC]
    evaluation = evaluate(config, secret_config=PASSWORD)
    models, _ = settle(evaluation.outputs["models"])
    tokens, _ = settle(evaluation.outputs["tokens"])
    return models, tokens, config


def test_the_suite_addresses_each_model_by_its_served_name_host_and_token(outputs):
    models, tokens, config = outputs
    requests = {key: (endpoint, token) for key, endpoint, token in e2e.prediction_requests(models, tokens)}
    assert set(requests) == {"team-a/torchserve", "kserve-test/tf-flower"}
    [cp] = [n for n in config["nodes"] if n["role"] == "control-plane"]
    torchserve, token = requests["team-a/torchserve"]
    assert torchserve.served_name == "adder"  # the example's model_snapshot name
    assert torchserve.host == models["team-a/torchserve"]["host"]
    # A protected model in Serverless is refused on port 80: the suite calls it over https,
    # at the same address, on the port of its httpsUrl.
    assert models["team-a/torchserve"]["httpsOnly"] is True
    assert torchserve.base_url == f"https://{cp['address']}:31904"
    assert models["team-a/torchserve"]["httpsUrl"].startswith(f"https://{torchserve.host}:31904/")
    assert token == tokens["team-a/ci"] and token.count(".") == 2  # a JWT
    public, no_token = requests["kserve-test/tf-flower"]
    assert public.served_name == "tf-flower"  # not the output key kserve-test/tf-flower
    assert public.host == models["kserve-test/tf-flower"]["host"]
    assert public.base_url == f"http://{cp['address']}:{e2e_port(models)}"
    assert "httpsOnly" not in models["kserve-test/tf-flower"]
    assert no_token is None


def e2e_port(models) -> int:
    [port] = {int(entry["url"].split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
              for entry in models.values()}
    return port


class Recorder(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        scheme = "https" if hasattr(self.connection, "cipher") else "http"
        Recorder.seen.append((scheme, self.path, self.headers["Host"], self.headers.get("Authorization")))
        body = json.dumps({"predictions": [{"scores": [1.0], "prediction": 0, "key": "1"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_what_the_suite_sends_on_the_wire(outputs, tmp_path):
    """predict.py's client, as the suite calls it, against loopback servers standing in
    for the gateway's two ports: the scheme, path and headers each model's request
    carries; the protected one over https, its certificate checked with the CA the
    suite writes from `ingressCaCertificate`."""
    models, tokens, _ = outputs
    ca = make_ca()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_pem(ca))
    Recorder.seen = []
    names = sorted({entry["host"] for entry in models.values()})
    with http_server(Recorder) as plain, https_server(Recorder, ca, names, tmp_path) as tls:
        for _, endpoint, token in e2e.prediction_requests(models, tokens):
            scheme = endpoint.base_url.split("://")[0]
            predict(tls if scheme == "https" else plain, endpoint.host, endpoint.served_name,
                    b"\xff\xd8jpeg", token=token, ca_file=ca_file)
    assert Recorder.seen == [
        ("http", "/v1/models/tf-flower:predict", models["kserve-test/tf-flower"]["host"], None),
        ("https", "/v1/models/adder:predict", models["team-a/torchserve"]["host"],
         f"Bearer {tokens['team-a/ci']}"),
    ]
