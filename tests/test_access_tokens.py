"""Tokens: each verifies against the JWKS the RequestAuthentication carries, carries
the claims the policies check, and is the same on every evaluation."""
import calendar
import datetime
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives import serialization

from access_fixtures import PROJECTS, access_config, resolve, security_manifests
from components.access import tokens as token_lib
from components.access.config import Project, Token
from components.offline.program import evaluate, session_rsa_key
from istio_semantics import _b64decode, verify_jwt

NOW = calendar.timegm(datetime.date(2026, 6, 1).timetuple())


@pytest.fixture(scope="module")
def evaluation():
    return evaluate(access_config())


def parts(token: str) -> tuple[dict, dict]:
    header, payload, _ = token.split(".")
    return json.loads(_b64decode(header)), json.loads(_b64decode(payload))


def test_every_token_verifies_against_the_jwks_of_the_request_authentication(evaluation):
    [ra] = [m for m in security_manifests(evaluation) if m["kind"] == "RequestAuthentication"]
    [rule] = ra["spec"]["jwtRules"]
    jwks = json.loads(rule["jwks"])
    assert [k["kid"] for k in jwks["keys"]] and all("d" not in k for k in jwks["keys"])  # public only
    tokens = resolve(evaluation.outputs["tokens"])
    expected = {f"{p['name']}/{t['name']}": t["expires"] for p in PROJECTS for t in p.get("tokens", [])}
    assert set(tokens) == set(expected)
    for name, token in tokens.items():
        claims = verify_jwt(token, jwks, NOW)
        header, _ = parts(token)
        assert header == {"alg": "RS256", "kid": jwks["keys"][0]["kid"], "typ": "JWT"}
        assert claims["iss"] == rule["issuer"] == "kserve-cluster/test"
        project, token_name = name.split("/")
        assert claims["sub"] == f"{project}/{token_name}" and claims["project"] == project
        expires = datetime.date.fromisoformat(expected[name])
        assert claims["exp"] == calendar.timegm(expires.timetuple())  # 00:00 UTC that day
        assert claims["jti"] == token_lib.serial("test", project, Token(token_name, expires))
        assert set(claims) == {"iss", "sub", "project", "exp", "jti"}  # fixed claims only


def test_tokens_carry_what_their_projects_policy_checks(evaluation):
    tokens = resolve(evaluation.outputs["tokens"])
    policies = {m["metadata"]["name"]: m for m in security_manifests(evaluation)
                if m["kind"] == "AuthorizationPolicy"}
    for project in ("team-a", "team-b"):
        rules = policies[f"kserve-project-{project}"]["spec"]["rules"]
        principals = rules[0]["from"][0]["source"]["notRequestPrincipals"]
        [condition] = rules[1]["when"]
        [serials] = rules[2]["when"]
        mine = [t for name, t in tokens.items() if name.startswith(f"{project}/")]
        assert len(principals) == len(mine) > 0
        for token in mine:
            _, claims = parts(token)
            assert f"{claims['iss']}/{claims['sub']}" in principals
            assert condition["key"] == "request.auth.claims[project]"
            assert claims["project"] in condition["notValues"]
            assert serials["key"] == "request.auth.claims[jti]"
            assert claims["jti"] in serials["notValues"]
        assert len(serials["notValues"]) == len(mine)  # the current serials, no more


def test_two_evaluations_give_the_same_tokens(evaluation):
    again = evaluate(access_config())
    assert resolve(again.outputs["tokens"]) == resolve(evaluation.outputs["tokens"])


def test_signing_is_deterministic_and_bound_to_the_key():
    private, public = session_rsa_key()
    project = Project("team-a", tokens=(Token("ci", datetime.date(2030, 1, 1)),))
    first = token_lib.project_tokens(private, "lab", (project,))
    assert first == token_lib.project_tokens(private, "lab", (project,))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    assert token_lib.project_tokens(other, "lab", (project,)) != first
    jwks = json.loads(token_lib.jwks(public))
    assert verify_jwt(first["team-a/ci"], jwks, NOW)["sub"] == "team-a/ci"
    with pytest.raises(ValueError):
        verify_jwt(token_lib.project_tokens(other, "lab", (project,))["team-a/ci"], jwks, NOW)


def test_key_id_is_the_rfc_7638_thumbprint():
    # The example key of RFC 7638, section 3.1, and the thumbprint the RFC gives for it.
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
         "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY3"
         "68QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4l"
         "Fd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
    key = rsa.RSAPublicNumbers(65537, int.from_bytes(_b64decode(n), "big")).public_key()
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    jwk = token_lib.public_jwk(pem)
    assert (jwk["n"], jwk["e"]) == (n, "AQAB")
    assert jwk["kid"] == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_a_non_rsa_key_is_refused():
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    with pytest.raises(ValueError, match="not an RSA key"):
        token_lib.sign(pem, {"sub": "x"})


def test_the_serial_changes_with_the_tokens_identity_or_expiry_and_only_then():
    day = datetime.date(2027, 3, 1)
    first = token_lib.serial("lab", "team-a", Token("ci", day))
    assert first == token_lib.serial("lab", "team-a", Token("ci", day))  # deterministic
    others = [token_lib.serial("lab", "team-a", Token("ci", day - datetime.timedelta(days=1))),
              token_lib.serial("lab", "team-a", Token("ci", day + datetime.timedelta(days=1))),
              token_lib.serial("lab", "team-a", Token("web", day)),
              token_lib.serial("lab", "team-b", Token("ci", day)),
              token_lib.serial("vms", "team-a", Token("ci", day)),
              token_lib.serial("lab", "team-a", Token("ci", day), generation=2)]
    assert first not in others and len(set(others)) == len(others)
    assert len(_b64decode(first)) == 16  # 128 bits, base64url


def test_a_new_expiry_gives_a_new_token_and_the_same_expiry_the_same_token():
    private, _ = session_rsa_key()
    day = datetime.date(2027, 3, 1)
    project = Project("team-a", tokens=(Token("ci", day),))
    token = token_lib.project_tokens(private, "lab", (project,))["team-a/ci"]
    again = Project("team-a", tokens=(Token("ci", day),))
    assert token_lib.project_tokens(private, "lab", (again,))["team-a/ci"] == token
    shorter = Project("team-a", tokens=(Token("ci", day - datetime.timedelta(days=30)),))
    assert token_lib.project_tokens(private, "lab", (shorter,))["team-a/ci"] != token
    assert token_lib.project_tokens(private, "lab", (project,), generation=2)["team-a/ci"] != token
