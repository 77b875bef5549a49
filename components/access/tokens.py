"""Client tokens: JWTs signed RS256 with the stack's signing key, and the JWKS that
the ingress gateway checks them against (pure).

A token carries fixed claims only (no `iat`, nothing random), and RS256
(RSASSA-PKCS1-v1_5) signatures are deterministic, so the same key and the same
stack file give the same token on every evaluation: `pulumi preview` shows no
diff.

Revocation: each token carries a serial, `jti`, derived from what identifies this
issue of it: the stack, the project, the token's name, its expiry day and the
signing key generation. The projects' policies accept only the serials of the
tokens the stack file lists now, so changing a token's `expires` (shorter or
longer) issues a new token and refuses the old one, and a token that was removed
(or whose day has passed) is refused. The serial is not a secret: it is a hash
of names and a date, and the policy lists it in plain text; it opens nothing
without the signature. Removing a token and adding it back with the very same
day gives the very same token: give another day to get a new one. The RSA work is done by the `cryptography` package (a well-kept library
beats our own RSA); the JWT framing is a few lines of base64url and JSON.
"""
from __future__ import annotations

import base64
import calendar
import datetime
import hashlib
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from components.access.config import Project, Token

ALGORITHM = "RS256"
# The claim the ingress policies check besides the principal (`iss/sub`).
PROJECT_CLAIM = "project"
# The per-issue serial (RFC 7519 section 4.1.7), which the policies check too.
SERIAL_CLAIM = "jti"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact_json(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def issuer(stack: str) -> str:
    """`iss` of every token of a stack (also the RequestAuthentication's issuer)."""
    return f"kserve-cluster/{stack}"


def subject(project: str, token: str) -> str:
    return f"{project}/{token}"


def principal(stack: str, project: str, token: str) -> str:
    """Istio's request principal for a token: `<iss>/<sub>`."""
    return f"{issuer(stack)}/{subject(project, token)}"


def token_key(project: str, token: str) -> str:
    """How a token is named in the stack outputs: `project/token`."""
    return f"{project}/{token}"


def expiry_seconds(day: datetime.date) -> int:
    """`exp`: 00:00 UTC of the expiry day."""
    return calendar.timegm(day.timetuple())


def serial(stack: str, project: str, token: Token, generation: int = 1) -> str:
    """`jti`: the token's serial, the same for the same issue, new when its project,
    name, expiry or the signing key generation changes (128 bits of SHA-256)."""
    text = "\n".join(["kserve-cluster token", issuer(stack), project, token.name,
                      token.expires.isoformat(), str(generation)])
    return b64url(hashlib.sha256(text.encode()).digest()[:16])


def serials(stack: str, project: Project, generation: int = 1) -> list[str]:
    """The serials the project's policy accepts: its current tokens'."""
    return [serial(stack, project.name, t, generation) for t in project.tokens]


def claims(stack: str, project: Project, token: Token, generation: int = 1) -> dict:
    return {"iss": issuer(stack), "sub": subject(project.name, token.name),
            PROJECT_CLAIM: project.name, "exp": expiry_seconds(token.expires),
            SERIAL_CLAIM: serial(stack, project.name, token, generation)}


def _public_numbers(public_key_pem: str) -> rsa.RSAPublicNumbers:
    key = serialization.load_pem_public_key(public_key_pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the token signing key is not an RSA key")
    return key.public_numbers()


def _int_bytes(number: int) -> bytes:
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def public_jwk(public_key_pem: str) -> dict:
    """The public key as a JWK, `kid` its RFC 7638 thumbprint."""
    numbers = _public_numbers(public_key_pem)
    members = {"e": b64url(_int_bytes(numbers.e)), "kty": "RSA", "n": b64url(_int_bytes(numbers.n))}
    kid = b64url(hashlib.sha256(_compact_json(members)).digest())
    return {**members, "alg": ALGORITHM, "use": "sig", "kid": kid}


def jwks(public_key_pem: str) -> str:
    """The JSON Web Key Set for the RequestAuthentication (public: no secret in it)."""
    return json.dumps({"keys": [public_jwk(public_key_pem)]}, sort_keys=True)


def sign(private_key_pem: str, payload: dict) -> str:
    """A compact JWS (`header.payload.signature`), RS256."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the token signing key is not an RSA key")
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    header = {"alg": ALGORITHM, "kid": public_jwk(public_pem)["kid"], "typ": "JWT"}
    signing_input = f"{b64url(_compact_json(header))}.{b64url(_compact_json(payload))}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def project_tokens(private_key_pem: str, stack: str, projects: tuple[Project, ...],
                   generation: int = 1) -> dict[str, str]:
    """Every token of every project, keyed `project/token`."""
    return {token_key(p.name, t.name): sign(private_key_pem, claims(stack, p, t, generation))
            for p in projects for t in p.tokens}
