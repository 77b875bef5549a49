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

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from access_fixtures import access_config, resolve, security_manifests
from components.access import tokens as token_lib
from components.access.config import Project, Token
from components.access.ingress_policies import authorization_policy_spec, host_patterns
from components.offline.program import evaluate, session_rsa_key
from istio_semantics import INGRESS_GATEWAY, NotModelled, Request, Workload, decide

STACK = "test"
NOW = calendar.timegm(datetime.date(2026, 6, 1).timetuple())
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


def test_a_policy_refuses_to_exist_without_hosts():
    with pytest.raises(ValueError):
        authorization_policy_spec(STACK, Project("team-a"), [])


def test_host_patterns_cover_the_port():
    assert host_patterns(["m.ns.example.com"]) == ["m.ns.example.com", "m.ns.example.com:*"]


def test_raw_deployment_hosts_follow_kserves_domain_template():
    evaluation = evaluate(access_config(serving={"deploymentMode": "RawDeployment"}))
    [policy] = [m for m in security_manifests(evaluation)
                if m["metadata"]["name"] == "kserve-project-team-b"]
    hosts = policy["spec"]["rules"][0]["to"][0]["operation"]["hosts"]
    assert hosts == ["iris-team-b.example.com", "iris-team-b.example.com:*",
                     "iris-predictor-team-b.example.com", "iris-predictor-team-b.example.com:*"]


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
