"""The ingress policies the program generates, evaluated by Istio's documented semantics.

The evaluator (tests/istio_semantics.py) is NOT ENVOY: it is our reading of
Istio's RequestAuthentication and AuthorizationPolicy reference, as code. These
tests show that the policies do what we mean under those documented rules;
they do not show what the gateway's Envoy does. That was not run here.

The policies, the JWKS and the tokens come from the real program under the
mock runtime; the signing key is the mocks' pulumi-tls stand-in (a real RSA key).
"""
import base64
import calendar
import datetime
import json

import pulumi
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from access_fixtures import EXPIRES, access_config, expires_in, resolve, security_manifests
from components.access import tokens as token_lib
from components.access.config import Project, Token, utc_today
from components.access.ingress_policies import authorization_policy_spec
from components.offline.program import evaluate, session_rsa_key
from istio_semantics import INGRESS_GATEWAY, NotModelled, Request, Workload, decide

STACK = "test"
NOW = calendar.timegm(datetime.date(2026, 6, 1).timetuple())
# Now, for the revocation tests: the tokens' days are counted from today.
TODAY = calendar.timegm(utc_today().timetuple()) + 3600
A_MODEL = "tf-flower.team-a.example.com"
A_PREDICTOR = "tf-flower-predictor.team-a.example.com"
A_PUBLIC = "showcase.team-a.example.com"
B_MODEL = "iris.team-b.example.com"
C_LOCKED = "locked.team-c.example.com"
OUTSIDE = "open-flower.kserve-test.example.com"


@pytest.fixture(scope="module")
def program():
    evaluation = evaluate(access_config())
    return security_manifests(evaluation), resolve(evaluation.outputs["tokens"])


def ask(program, host, token=None, now=NOW):
    manifests, _ = program
    return decide(Request(host=host, token=token), manifests, now)


def forged(claims: dict) -> str:
    """A token with the right shape and claims, signed by a key the stack never had."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    return token_lib.sign(pem, claims)


def stack_signed(claims: dict) -> str:
    """Signed with the stack's own key (the mocks' key): what the stack could have issued."""
    return token_lib.sign(session_rsa_key()[0], claims)


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


# ---------------------------------------------------------------- the matrix

def test_project_a_token_to_a_model_of_project_a_is_allowed(program):
    _, tokens = program
    for name in ("team-a/ci", "team-a/web"):
        decision = ask(program, A_MODEL, tokens[name])
        assert decision.status == 200, decision
        assert decision.principal == f"kserve-cluster/{STACK}/{name}"


def test_project_a_token_to_a_model_of_project_b_is_denied(program):
    _, tokens = program
    decision = ask(program, B_MODEL, tokens["team-a/ci"])
    assert decision.status == 403 and decision.reason == "denied by kserve-project-team-b"
    assert ask(program, A_MODEL, tokens["team-b/batch"]).status == 403


def test_no_token_to_a_public_model_is_allowed(program):
    assert ask(program, A_PUBLIC).status == 200


def test_no_token_to_a_protected_model_is_denied(program):
    for host in (A_MODEL, B_MODEL, C_LOCKED):
        decision = ask(program, host)
        assert decision.status == 403, (host, decision)


def test_an_expired_token_is_rejected(program):
    _, tokens = program
    expires = claims_of(tokens["team-a/web"])["exp"]
    assert ask(program, A_MODEL, tokens["team-a/web"], now=expires - 1).status == 200
    decision = ask(program, A_MODEL, tokens["team-a/web"], now=expires)
    assert decision.status == 401 and "expired" in decision.reason
    # An invalid token is refused on any host, open ones included.
    assert ask(program, OUTSIDE, tokens["team-a/web"], now=expires + 86400).status == 401


def test_a_forged_token_is_rejected(program):
    _, tokens = program
    decision = ask(program, A_MODEL, forged(claims_of(tokens["team-a/ci"])))
    assert decision.status == 401 and "signature" in decision.reason


def test_a_token_with_altered_claims_is_rejected(program):
    _, tokens = program
    header, payload, signature = tokens["team-b/batch"].split(".")
    claims = {**claims_of(tokens["team-b/batch"]), "sub": "team-a/ci", "project": "team-a"}
    altered = token_lib.b64url(json.dumps(claims).encode())
    assert ask(program, A_MODEL, f"{header}.{altered}.{signature}").status == 401
    assert ask(program, A_MODEL, "not-a-token").status == 401


# ---------------------------------------------------------------- around the matrix

def test_hosts_with_a_port_other_case_or_the_predictors_name_are_protected_too(program):
    _, tokens = program
    for host in (f"{A_MODEL}:31903", f"{A_MODEL}:80", A_MODEL.upper(), A_PREDICTOR,
                 f"{A_PREDICTOR}:31903"):
        assert ask(program, host).status == 403, host
        assert ask(program, host, tokens["team-a/ci"]).status == 200, host


def test_models_outside_projects_stay_open_with_or_without_a_token(program):
    _, tokens = program
    assert ask(program, OUTSIDE).status == 200
    assert ask(program, OUTSIDE, tokens["team-b/batch"]).status == 200
    assert ask(program, A_PUBLIC, tokens["team-b/batch"]).status == 200
    assert ask(program, "unknown.example.com").status == 200  # the gateway 404s it later


def test_a_project_without_tokens_is_closed_to_every_token(program):
    _, tokens = program
    for token in tokens.values():
        assert ask(program, C_LOCKED, token).status == 403


def test_a_token_removed_from_the_stack_file_no_longer_opens_the_project(program):
    _, tokens = program
    removed = stack_signed({**claims_of(tokens["team-a/ci"]), "sub": "team-a/old"})
    assert ask(program, A_MODEL, removed).status == 403
    assert ask(program, OUTSIDE, removed).status == 200  # still a valid signature: it is not 401


def test_the_project_claim_is_checked_besides_the_principal(program):
    _, tokens = program
    # A principal of team-a with team-b's project claim: only the claim rule denies it.
    mixed = stack_signed({**claims_of(tokens["team-a/ci"]), "project": "team-b"})
    decision = ask(program, A_MODEL, mixed)
    assert decision.status == 403 and decision.reason == "denied by kserve-project-team-a"
    assert ask(program, B_MODEL, mixed).status == 403


# ---------------------------------------------------------------- revocation: the serial

def with_ci(expires=None, removed=False) -> tuple[list[dict], dict]:
    """The program again, team-a's token `ci` given another day (or removed)."""
    config = access_config()
    team_a = config["projects"][0]
    if removed:
        team_a["tokens"] = [t for t in team_a["tokens"] if t["name"] != "ci"]
    else:
        team_a["tokens"][0]["expires"] = expires
    evaluation = evaluate(config)
    return security_manifests(evaluation), resolve(evaluation.outputs["tokens"])


def test_shortening_a_tokens_expiry_revokes_the_old_token(program):
    _, before = program
    shorter = with_ci(expires_in(30))
    old, new = before["team-a/ci"], shorter[1]["team-a/ci"]
    assert old != new and claims_of(old)["sub"] == claims_of(new)["sub"]
    # Validly signed by the stack's key, not expired, the right principal and project:
    decision = ask(shorter, A_MODEL, old, now=TODAY)
    assert decision.status == 403 and decision.reason == "denied by kserve-project-team-a"
    assert ask(shorter, A_MODEL, new, now=TODAY).status == 200
    assert ask(shorter, A_MODEL, before["team-a/web"], now=TODAY).status == 200  # untouched


def test_re_adding_a_tokens_name_revokes_the_old_token(program):
    _, before = program
    removed = with_ci(removed=True)
    assert "team-a/ci" not in removed[1]
    assert ask(removed, A_MODEL, before["team-a/ci"], now=TODAY).status == 403
    again = with_ci(expires_in(301))
    assert ask(again, A_MODEL, before["team-a/ci"], now=TODAY).status == 403
    assert ask(again, A_MODEL, again[1]["team-a/ci"], now=TODAY).status == 200
    # Added back with the very same day, it is the very same token (deterministic).
    assert with_ci(EXPIRES["team-a/ci"])[1]["team-a/ci"] == before["team-a/ci"]


def test_a_2099_token_of_the_old_program_is_refused(program):
    """What the program issued before serials: fixed claims, exp 2099, the stack's key.
    The stack file now says ci ends within maxTokenDays; the 2099 token is refused."""
    _, tokens = program
    claims = {k: v for k, v in claims_of(tokens["team-a/ci"]).items() if k != "jti"}
    issued_2099 = stack_signed({**claims, "exp": calendar.timegm(datetime.date(2099, 12, 31)
                                                                 .timetuple())})
    decision = ask(program, A_MODEL, issued_2099, now=TODAY)
    assert decision.status == 403 and decision.reason == "denied by kserve-project-team-a"
    assert ask(program, A_MODEL, tokens["team-a/ci"], now=TODAY).status == 200


def test_a_token_whose_day_has_passed_is_dropped_with_a_warning_and_refused(program, monkeypatch):
    _, before = program
    warnings = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *a, **k: warnings.append(message))
    past = with_ci((utc_today() - datetime.timedelta(days=1)).isoformat())  # no error
    assert "team-a/ci" not in past[1] and "team-a/web" in past[1]
    [warning] = [w for w in warnings if "tokens[0] (ci).expires" in w]
    assert "the token's day has passed" in warning and "it is dropped" in warning
    # Issued while its day was ahead, presented before its `exp`: refused by the policy.
    decision = ask(past, A_MODEL, before["team-a/ci"], now=TODAY)
    assert decision.status == 403 and decision.reason == "denied by kserve-project-team-a"
    assert ask(past, A_MODEL, past[1]["team-a/web"], now=TODAY).status == 200


def test_a_policy_refuses_to_exist_without_a_domain():
    with pytest.raises(ValueError):
        authorization_policy_spec(STACK, Project("team-a"), "")


def test_raw_deployment_policies_cover_the_namespace():
    evaluation = evaluate(access_config(serving={"deploymentMode": "RawDeployment"}))
    [policy] = [m for m in security_manifests(evaluation)
                if m["metadata"]["name"] == "kserve-project-team-b"]
    assert policy["spec"]["rules"][0]["to"] == [
        {"operation": {"hosts": ["*.team-b.example.com", "*.team-b", "*.team-b.svc",
                                 "*.team-b.svc.cluster.local"]}}]


# ---------------------------------------------------------------- hosts from the upstream rules
#
# The hosts a model can get, written here from the pinned upstream sources (not from
# the program's own list):
# - KServe v0.13.1 pkg/constants/constants.go:238-240 and 480-517: the components are
#   predictor, transformer and explainer; each is a service `<isvc>-<component>`, or
#   `<isvc>-<component>-default` when an older release made it.
# - Knative Serving knative-v1.17.0 vendor/knative.dev/networking/pkg/config/config.go:56
#   and :60: domain-template `{{.Name}}.{{.Namespace}}.{{.Domain}}`, tag-template
#   `{{.Tag}}-{{.Name}}` (config-network left at its defaults by the program).
# - KServe v0.13.1 pkg/controller/v1beta1/inferenceservice/reconcilers/knative/
#   ksvc_reconciler.go:126, 136, 147: the tags `latest` (annotation
#   serving.kserve.io/enable-tag-routing) and `prev` (a canary after a rollout).
# - KServe v0.13.1 .../reconcilers/ingress/ingress_reconciler.go:76-110: the top-level
#   host is the transformer's (else the predictor's) host with the first
#   `-transformer[-default]` (`-predictor[-default]`) cut out: a `-predictor` inside
#   the model's name moves it (`x-predictor-v2` -> `x-v2-predictor...`).
# - KServe v0.13.1 .../reconcilers/ingress/kube_ingress_reconciler.go:139-150, 183-243
#   (RawDeployment): every Ingress host is the domainTemplate of the isvc's name or of a
#   component's service name; raw_kube_reconciler.go:82 the same for the components'
#   own URLs. The template is the one this stack gives KServe (RAW_TEMPLATE below,
#   checked against the chart values in tests/test_serving_resources.py).
# - net-istio config/202-gateway.yaml: knative-ingress-gateway takes hosts "*" on the
#   pods labelled `istio: ingressgateway`, so every one of these reaches the policies
#   below (read on net-istio's main of 2021, the mirror has no knative-v1.17.0 tag).

DOMAIN = "example.com"
RAW_TEMPLATE = "{name}.{namespace}.{domain}"  # {{ .Name }}.{{ .Namespace }}.{{ .IngressDomain }}
COMPONENT_NAMES = ("predictor", "transformer", "explainer")
KNATIVE_TAGS = ("prev", "latest")


def upstream_hosts(isvc: str, namespace: str, mode: str = "Serverless") -> set[str]:
    services = [f"{isvc}-{c}{suffix}" for c in COMPONENT_NAMES for suffix in ("", "-default")]
    if mode == "Serverless":
        names = services + [f"{tag}-{s}" for tag in KNATIVE_TAGS for s in services]
        hosts = {f"{name}.{namespace}.{DOMAIN}" for name in names}
        top = set()
        for host in hosts:
            for component in ("transformer", "predictor"):
                cut = f"-{component}-default" if "-default" in host else f"-{component}"
                top.add(host.replace(cut, "", 1))
        return hosts | top
    return {RAW_TEMPLATE.format(name=name, namespace=namespace, domain=DOMAIN)
            for name in [isvc, *services]}


def host_forms(host: str) -> list[str]:
    """The Host header a client may send for `host`: any port, any case, a port Envoy
    does not take for one (not a number, empty, beyond 32 bits)."""
    return [host, f"{host}:80", f"{host}:31903", f"{host}:1", f"{host}:65535", f"{host}:+80",
            f"{host}:0080", f"{host}:4294967295", host.upper(), host.title(), f"{host.upper()}:443",
            f"{host}:", f"{host}:abc", f"{host}:99999999999", f"{host}:80:80"]


PROTECTED = [("tf-flower", "team-a"), ("iris", "team-b"), ("locked", "team-c"),
             ("by-hand", "team-a")]  # by-hand: made by a member with kubectl, not in the stack file


@pytest.mark.parametrize("mode", ["Serverless", "RawDeployment"])
def test_every_host_of_a_protected_model_refuses_no_token_and_other_projects_tokens(mode):
    evaluation = evaluate(access_config(serving={"deploymentMode": mode}))
    manifests, tokens = security_manifests(evaluation), resolve(evaluation.outputs["tokens"])
    own = {"team-a": ["team-a/ci", "team-a/web"], "team-b": ["team-b/batch"], "team-c": []}
    leaks = []
    for name, namespace in PROTECTED:
        others = [t for key, t in tokens.items() if not key.startswith(f"{namespace}/")]
        for host in sorted(upstream_hosts(name, namespace, mode)):
            for form in host_forms(host):
                for token in [None, *others]:
                    decision = decide(Request(form, token), manifests, NOW)
                    if decision.allowed:
                        leaks.append((form, token and claims_of(token)["sub"]))
    assert not leaks, f"{len(leaks)} open, e.g. {leaks[:5]}"
    assert own  # (the project's own tokens: next test)


@pytest.mark.parametrize("mode", ["Serverless", "RawDeployment"])
def test_the_projects_token_opens_the_documented_hosts_in_any_form(mode):
    evaluation = evaluate(access_config(serving={"deploymentMode": mode}))
    manifests, tokens = security_manifests(evaluation), resolve(evaluation.outputs["tokens"])
    for name, namespace, token in (("tf-flower", "team-a", "team-a/ci"),
                                   ("tf-flower", "team-a", "team-a/web"),
                                   ("iris", "team-b", "team-b/batch")):
        for host in (f"{name}.{namespace}.{DOMAIN}", f"{name}-predictor.{namespace}.{DOMAIN}"):
            for form in (host, f"{host}:31903", f"{host}:80", host.upper()):
                decision = decide(Request(form, tokens[token]), manifests, NOW)
                assert decision.status == 200, (form, token, decision)


def test_a_canary_tag_host_needs_the_token(program):
    """The issue's first case: Knative's `prev-` host of a canary's previous revision."""
    _, tokens = program
    host = f"prev-tf-flower-predictor.team-a.{DOMAIN}"
    assert ask(program, host).status == 403
    assert ask(program, host, tokens["team-b/batch"]).status == 403
    assert ask(program, host, tokens["team-a/ci"]).status == 200


def test_a_public_model_stays_open_on_its_hosts_and_nothing_else_opens(program):
    _, tokens = program
    for host in (A_PUBLIC, f"showcase-predictor.team-a.{DOMAIN}",
                 f"prev-showcase-predictor.team-a.{DOMAIN}", f"{A_PUBLIC}:31903", A_PUBLIC.upper()):
        assert ask(program, host).status == 200, host
        assert ask(program, host, tokens["team-b/batch"]).status == 200, host
    # A protected model named like one of the public model's hosts is not opened by it.
    evaluation = evaluate(access_config(models=[
        *access_config()["models"],
        {"name": "prev-showcase", "namespace": "team-a", "format": "tensorflow",
         "storageUri": "gs://kfserving-examples/models/tensorflow/flowers"}]))
    manifests = security_manifests(evaluation)
    assert decide(Request(f"prev-showcase-predictor.team-a.{DOMAIN}"), manifests, NOW).status == 403
    assert decide(Request(A_PUBLIC), manifests, NOW).status == 200


def test_a_project_without_models_in_the_stack_file_is_protected_too():
    config = access_config()
    config["models"] = [m for m in config["models"] if m["namespace"] != "team-b"]
    manifests = security_manifests(evaluate(config))
    assert decide(Request(f"anything.team-b.{DOMAIN}"), manifests, NOW).status == 403


def test_raw_deployment_hosts_cannot_collide():
    """`{{.Name}}-{{.Namespace}}` gave `iris-ml` in `prod` and `iris` in `ml-prod` one host."""
    from components.serving.v1_protocol import model_host
    assert model_host("RawDeployment", "iris-ml", "prod", DOMAIN) != \
        model_host("RawDeployment", "iris", "ml-prod", DOMAIN)
    assert model_host("RawDeployment", "iris", "ml-prod", DOMAIN) == \
        RAW_TEMPLATE.format(name="iris", namespace="ml-prod", domain=DOMAIN)


# ---------------------------------------------------------------- the evaluator can say no

def _policy(action, rules, name="p", namespace="istio-system", selector=None):
    return {"kind": "AuthorizationPolicy", "metadata": {"name": name, "namespace": namespace},
            "spec": {"action": action, "rules": rules,
                     "selector": {"matchLabels": selector or {"istio": "ingressgateway"}}}}


def test_evaluator_any_allow_policy_closes_what_it_does_not_name():
    """Istio's documented trap, which is why the project uses DENY policies only."""
    allow_a = _policy("ALLOW", [{"to": [{"operation": {"hosts": ["a.example.com"]}}]}])
    assert decide(Request("a.example.com"), [allow_a], NOW).status == 200
    assert decide(Request("b.example.com"), [allow_a], NOW).status == 403
    assert decide(Request("b.example.com"), [], NOW).status == 200


def test_evaluator_deny_wins_over_allow_and_matches_fields_as_documented():
    deny = _policy("DENY", [{"from": [{"source": {"notRequestPrincipals": ["*"]}}]}], name="d")
    allow = _policy("ALLOW", [{}], name="a")  # an empty rule matches everything
    assert decide(Request("x"), [deny, allow], NOW).status == 403
    empty_allow = _policy("ALLOW", [], name="none")  # no rules: never matches
    assert decide(Request("x"), [empty_allow], NOW).status == 403
    other_workload = _policy("DENY", [{}], selector={"app": "something-else"})
    assert decide(Request("x"), [other_workload], NOW).status == 200
    other_namespace = _policy("DENY", [{}], namespace="team-a")
    assert decide(Request("x"), [other_namespace], NOW).status == 200
    assert decide(Request("x"), [other_namespace], NOW,
                  Workload("team-a", INGRESS_GATEWAY.labels)).status == 403


def test_evaluator_refuses_what_it_does_not_model():
    with pytest.raises(NotModelled):
        decide(Request("x"), [_policy("DENY", [{"from": [{"source": {"ipBlocks": ["1.2.3.4"]}}]}])], NOW)
    with pytest.raises(NotModelled):
        decide(Request("x"), [_policy("CUSTOM", [{}])], NOW)


def test_evaluator_host_suffix_and_port_semantics():
    """Istio's host matching on `:authority`: a suffix does not match a Host with a port;
    the gateway's EnvoyFilter strips a numeric port first and refuses any other."""
    from components.access.ingress_policies import (
        GATEWAY_NAMESPACE, HOST_PORT_FILTER_NAME, host_port_filter_spec)
    deny = _policy("DENY", [{"to": [{"operation": {"hosts": ["*.ns.example.com"],
                                                   "notHosts": ["open.ns.example.com"]}}]}])
    assert decide(Request("m.ns.example.com"), [deny], NOW).status == 403
    assert decide(Request("M.NS.Example.COM"), [deny], NOW).status == 403
    assert decide(Request("open.ns.example.com"), [deny], NOW).status == 200
    assert decide(Request("m.other-ns.example.com"), [deny], NOW).status == 200
    assert decide(Request("m.ns.example.com:80"), [deny], NOW).status == 200  # the hole
    strip = {"kind": "EnvoyFilter", "spec": host_port_filter_spec(),
             "metadata": {"name": HOST_PORT_FILTER_NAME, "namespace": GATEWAY_NAMESPACE}}
    assert decide(Request("m.ns.example.com:80"), [deny, strip], NOW).status == 403
    assert decide(Request("open.ns.example.com:80"), [deny, strip], NOW).status == 200
    assert decide(Request("m.ns.example.com:x"), [deny, strip], NOW).status == 400
    assert decide(Request("[::1]:8080"), [deny, strip], NOW).status == 200
    other = {**strip, "spec": {**strip["spec"], "configPatches": [
        {**strip["spec"]["configPatches"][0],
         "patch": {"operation": "MERGE", "value": {"typed_config": {"@type": "x"}}}}]}}
    with pytest.raises(NotModelled):
        decide(Request("m.ns.example.com"), [deny, other], NOW)
