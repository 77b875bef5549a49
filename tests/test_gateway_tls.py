"""HTTPS at the ingress gateway (issue 16, section 3): the node port, the certificate
chain cert-manager issues, net-istio's Gateway, the stack's CA as an output, the
operator's own certificate as secrets only, the 403 on plain HTTP and the token's
place. The policies are judged by tests/istio_semantics.py (NOT ENVOY)."""
import pytest

from access_fixtures import access_config, resolve, security_manifests
from components.offline.graph import Graph
from components.offline.program import MOCK_CA_PEM, evaluate
from components.problems import ConfigError
from components.serving import gateway_tls
from components.stack_config import parse_stack_config
from components.stack_file import stack_file_config
from istio_semantics import Request, decide
from test_access_policies import A_MODEL, A_PUBLIC, NOW, OUTSIDE

CERT = "-----BEGIN CERTIFICATE-----\nb3du\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n"


@pytest.fixture(scope="module")
def program():
    evaluation = evaluate(access_config())
    return evaluation, Graph(evaluation)


def config_errors(serving: dict, secret_keys=frozenset(), **other) -> str:
    raw = {**stack_file_config("lab"), **other}
    raw["serving"] = {**raw.get("serving", {}), **serving}
    try:
        parse_stack_config(raw, has_secret_private_key=True, secret_keys=secret_keys)
    except ConfigError as error:
        return str(error)
    return ""


# ------------------------------------------------------------------ config

def test_https_node_port_defaults_and_is_validated():
    config = parse_stack_config(stack_file_config("lab"), has_secret_private_key=True)
    assert config.serving.https_node_port == 31904
    assert "serving.httpsNodePort" in config_errors({"httpsNodePort": 80})
    assert "serving.httpsNodePort" in config_errors({"ingressNodePort": 31000,
                                                     "httpsNodePort": 31000})
    assert "grafanaNodePort" in config_errors(
        {"httpsNodePort": 30300}, monitoring={"enabled": False, "grafanaNodePort": 30300})
    assert config_errors({"httpsNodePort": 30443}) == ""


def test_own_certificate_and_key_are_refused_in_plain_text_and_never_echoed():
    message = config_errors({"tls": {"certificate": CERT, "privateKey": KEY}})
    assert "serving.tls.privateKey" in message and "plain text" in message
    assert "a2V5" not in message and "b3du" not in message
    # Encrypted in the stack file (a tool's view): accepted, not readable.
    encrypted = {"tls": {"certificate": {"secure": "v1:x"}, "privateKey": {"secure": "v1:y"}}}
    assert config_errors(encrypted) == ""
    # From the Pulumi CLI, with `serving` held as a secret: taken.
    raw = stack_file_config("lab")
    raw["serving"] = {**raw.get("serving", {}), "tls": {"certificate": CERT, "privateKey": KEY}}
    config = parse_stack_config(raw, has_secret_private_key=True, secret_keys={"serving"})
    assert config.serving.tls.private_key == KEY
    assert "a2V5" not in repr(config.serving)
    assert "serving.tls.privateKey" in config_errors({"tls": {"certificate": CERT}},
                                                     secret_keys={"serving"})


# ------------------------------------------------------------------ objects and order

def test_gateway_service_has_the_https_node_port(program):
    evaluation, _ = program
    ports = evaluation.named("istio-ingressgateway-chart").inputs["values"]["service"]["ports"]
    [https] = [p for p in ports if p["name"] == "https"]
    assert (https["port"], https["targetPort"], https["nodePort"]) == (443, 443, 31904)


def test_certificate_chain_from_the_stacks_own_ca(program):
    evaluation, graph = program
    issuer = evaluation.named("ingress-selfsigned-issuer").inputs
    ca = evaluation.named("ingress-ca-certificate").inputs
    ca_issuer = evaluation.named("ingress-ca-issuer").inputs
    cert = evaluation.named("ingress-certificate").inputs
    assert issuer["kind"] == "Issuer" and issuer["spec"] == {"selfSigned": {}}
    assert ca["spec"]["isCA"] is True
    assert ca["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]
    assert ca_issuer["spec"] == {"ca": {"secretName": ca["spec"]["secretName"]}}
    assert cert["spec"]["issuerRef"]["name"] == ca_issuer["metadata"]["name"]
    assert cert["metadata"]["namespace"] == "istio-system"
    names = cert["spec"]["dnsNames"]
    assert {"example.com", "*.example.com", "*.team-a.example.com"} <= set(names)
    assert graph.waits_for("ingress-selfsigned-issuer", "cert-manager-webhook-ready")
    assert graph.waits_for("ingress-certificate", "ingress-ca-issuer")
    assert graph.waits_for("ingress-ca-issuer", "ingress-ca-certificate")


def test_every_model_host_is_covered_by_one_certificate_name(program):
    evaluation, _ = program
    names = evaluation.named("ingress-certificate").inputs["spec"]["dnsNames"]
    config = parse_stack_config(access_config(), has_secret_private_key=True)

    def covered(host):
        return any(n == host or (n.startswith("*.") and host.split(".", 1)[1] == n[2:])
                   for n in names)
    for model in config.serving.models:
        for prefix in ("", "prev-"):
            host = f"{prefix}{model.name}-predictor.{model.namespace}.example.com"
            assert covered(host), host
        assert covered(f"{model.name}.{model.namespace}.example.com")


def test_net_istio_gateway_serves_https_with_the_credential(program):
    evaluation, graph = program
    patch = evaluation.named("knative-ingress-gateway-https").inputs
    assert patch["metadata"]["name"] == "knative-ingress-gateway"
    servers = {s["port"]["number"]: s for s in patch["spec"]["servers"]}
    assert servers[80]["port"]["protocol"] == "HTTP"
    assert servers[443]["tls"] == {"mode": "SIMPLE",
                                   "credentialName": gateway_tls.CREDENTIAL_SECRET}
    assert graph.waits_for("knative-ingress-gateway-https", "ingress-certificate")
    assert graph.waits_for("knative-ingress-gateway-https", "knative-net-istio")
    assert graph.waits_for("kserve-chart", "knative-ingress-gateway-https")


def test_the_ca_certificate_is_a_public_output(program):
    evaluation, _ = program
    assert resolve(evaluation.outputs["ingressCaCertificate"]) == MOCK_CA_PEM
    assert evaluation.outputs["ingressHttpsPort"] == 31904


def test_own_certificate_replaces_the_ca_chain_and_stays_secret():
    raw = stack_file_config("lab")
    serving = {**raw.pop("serving", {}), "tls": {"certificate": CERT, "privateKey": KEY}}
    evaluation = evaluate(raw, secret_config={"serving": serving})
    names = {r.name for r in evaluation.registrations}
    assert "ingress-ca-certificate" not in names
    secret = evaluation.named("ingress-tls-secret")
    assert "a2V5" not in secret.plain
    assert "ingressCaCertificate" not in evaluation.outputs


def test_protected_models_are_called_over_https(program):
    evaluation, _ = program
    models = resolve(evaluation.outputs["models"])
    protected = [m for m in models.values() if m.get("needsToken")]
    assert protected
    for entry in protected:
        assert entry["httpsUrl"].startswith(f"https://{entry['host']}:31904/")
        assert "--cacert ca.pem" in entry["curl"] and "--resolve" in entry["curl"]


def test_raw_deployment_models_get_no_https_url_and_stay_on_http():
    """RawDeployment: KServe's Kubernetes Ingress has no TLS, nothing serves 443 for
    the models; the outputs must not promise it, and the smoke step stays on http."""
    config = access_config()
    config["serving"] = {**config.get("serving", {}), "deploymentMode": "RawDeployment"}
    evaluation = evaluate(config)
    models = resolve(evaluation.outputs["models"])
    assert models and all("httpsUrl" not in m and "httpsOnly" not in m for m in models.values())
    for smoke in (r for r in evaluation.registrations if r.name.startswith("smoke-predict-")):
        env = smoke.inputs["create"].splitlines()[0]  # sudo -n env NAME=value ...
        assert " URL=http://" in env and "CA_ON_STDIN" not in env and "RESOLVE" not in env


# ------------------------------------------------------------------ policies

@pytest.fixture(scope="module")
def policies(program):
    evaluation, _ = program
    return security_manifests(evaluation), resolve(evaluation.outputs["tokens"])


def test_a_protected_model_over_plain_http_is_refused_even_with_its_token(policies):
    manifests, tokens = policies
    token = tokens["team-a/ci"]
    assert decide(Request(A_MODEL, token, port=443), manifests, NOW).allowed
    refused = decide(Request(A_MODEL, token, port=80), manifests, NOW)
    assert refused.status == 403
    assert decide(Request(A_MODEL + ":31903", token, port=80), manifests, NOW).status == 403
    # Public models and models outside projects stay on HTTP.
    assert decide(Request(A_PUBLIC, port=80), manifests, NOW).allowed
    assert decide(Request(OUTSIDE, port=80), manifests, NOW).allowed


def test_the_403_over_plain_http_says_to_use_https(policies):
    manifests, tokens = policies
    https_port = 31904
    for token in (tokens["team-a/ci"], None, tokens["team-b/batch"]):
        for host in (A_MODEL, A_MODEL + ":31903"):
            refused = decide(Request(A_MODEL if host == A_MODEL else host, token, port=80),
                             manifests, NOW)
            assert refused.status == 403
            assert refused.body == (
                f"RBAC: access denied: use https: {A_MODEL} answers over https only, on the "
                f"gateway's HTTPS node port {https_port} (https://{A_MODEL}:{https_port}/, "
                "certificate from the stack's ingressCaCertificate output)\n")
    # Over https a 403 is about the token: Envoy's own body.
    wrong = decide(Request(A_MODEL, tokens["team-b/batch"], port=443), manifests, NOW)
    assert wrong.status == 403 and wrong.body == "RBAC: access denied"
    # The cluster-local listener is not the HTTP port either.
    local = decide(Request("tf-flower.team-a.svc.cluster.local", port=8081), manifests, NOW)
    assert local.status == 403 and local.body == "RBAC: access denied"
    # Other refusals on port 80 keep their bodies.
    assert "use https" not in decide(Request(A_MODEL + ":x", port=80), manifests, NOW).body


def test_the_https_only_reply_is_on_the_http_listener_only_and_only_in_serverless(program):
    evaluation, graph = program
    [reply] = [r for r in evaluation.registrations if r.name == "gateway-https-only-reply"]
    assert reply.inputs["kind"] == "EnvoyFilter"
    assert reply.inputs["metadata"] == {"name": "kserve-cluster-https-only",
                                        "namespace": "istio-system"}
    [patch] = reply.inputs["spec"]["configPatches"]
    assert patch["match"]["listener"]["portNumber"] == 80
    assert graph.waits_for("gateway-https-only-reply", "istio-ingressgateway-chart")
    assert graph.waits_for("isvc-team-a-tf-flower", "gateway-https-only-reply")
    config = access_config()
    config["serving"] = {**config.get("serving", {}), "deploymentMode": "RawDeployment"}
    raw = evaluate(config)
    assert not [r for r in raw.registrations if r.name == "gateway-https-only-reply"]


def test_the_token_is_read_from_the_authorization_header_only(policies):
    manifests, tokens = policies
    token = tokens["team-a/ci"]
    [ra] = [m for m in manifests if m["kind"] == "RequestAuthentication"]
    assert ra["spec"]["jwtRules"][0]["fromHeaders"] == [{"name": "Authorization",
                                                         "prefix": "Bearer "}]
    assert "fromParams" not in ra["spec"]["jwtRules"][0]
    assert decide(Request(A_MODEL, token, token_in="query"), manifests, NOW).status == 403
