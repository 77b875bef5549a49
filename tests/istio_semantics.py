"""A small evaluator of Istio's documented request authentication and authorization
semantics at one workload, for tests. THIS IS NOT ENVOY.

It is our reading of Istio's reference documentation (security.istio.io
RequestAuthentication and AuthorizationPolicy, as of Istio 1.24), written as
code, so that tests can ask what the generated policies decide for a request.
It checks our policies against our understanding of the rules; it does not
prove what the istio-ingressgateway's Envoy does with them. Only the fields the
project uses are modelled; anything else raises NotModelled instead of being
silently ignored.

What it models (sources: istio/istio at tag 1.24.6, envoyproxy/envoy as stored
in the code index, not pinned to the Envoy build of Istio 1.24.6):
- The gateway's EnvoyFilter from components/access/ingress_policies.py, and only
  that one (any other EnvoyFilter patch raises NotModelled), applied before
  anything below:
  - `strip_any_host_port` on the connection manager: the port leaves the
    `:authority` before any HTTP filter or the route sees it, and only when it
    is a number (Envoy source/common/http/header_utility.cc,
    HeaderUtility::stripPortFromHost: the text after the last ':', outside an
    IPv6 `[...]`, parsed with absl::SimpleAtoi into a uint32; otherwise the
    authority is left as it is);
  - the Lua filter whose text is HOST_PORT_LUA: an authority that still has a
    ':' and does not start with '[' is answered 400. (The route lookup would
    have ignored anything after the last ':', router/config_impl.cc,
    RouteMatcher::findVirtualHost with ignore_port_in_host_matching, which
    Istio sets on gateways: pilot/pkg/networking/core/gateway.go:547.)
- The gateway's EnvoyFilter that gives the HTTP listener's 403s another body
  (`https_only_reply_spec`, match `listener.portNumber`: the listener port, 80),
  and only that form: the connection manager's `local_reply_config` (Envoy
  api/envoy/extensions/filters/network/http_connection_manager/v3/
  http_connection_manager.proto, LocalReplyConfig and ResponseMapper: "The
  mappers will be checked by the specified order until one is matched"; they
  apply to replies Envoy makes itself, never to an upstream's). A mapper's
  `filter` may only be a `status_code_filter` with `op: EQ`; its
  `body_format_override.text_format_source.inline_string` may only use
  `%LOCAL_REPLY_BODY%` (the body the filter gave: Envoy's RBAC filter answers
  "RBAC: access denied", source/extensions/filters/http/rbac/rbac_filter.cc) and
  `%REQ(:AUTHORITY)%` (after the port was stripped). `Decision.body` is the
  resulting body of a local reply.
- RequestAuthentication: a request without a token passes with no identity; a
  bearer token that does not verify under the `jwtRules` (unknown issuer, bad
  signature, expired, malformed) is rejected with 401. A valid token gives the
  request principal `<iss>/<sub>` and its claims. The token goes on to the
  upstream (`Decision.upstream_token`) only when the rule that accepted it has
  `forwardOriginalToken: true`; otherwise the gateway removes the header
  (jwt_authn `forward`, set from that field: istio 1.24.6
  pilot/pkg/security/authn/policy_applier.go:165; false by default). That
  matters where the gateway routes a request back to itself (KServe's top-level
  host goes on to the local gateway, the same pods).
- Where the token is read: `fromHeaders` of a jwtRule (header `name`, `prefix`);
  without it Istio's default places, the `Authorization: Bearer` header and the
  `access_token` query parameter. A token elsewhere is not seen (the request has
  no identity). `Request.token_in` says where the client put it.
- `ports`/`notPorts` of an operation: the listener port the request came in on
  (`Request.port`: the gateway listens on the Service's targetPort, 80 or 443).
- AuthorizationPolicy, in Istio's order: CUSTOM (not modelled), then DENY:
  any matching DENY policy denies (403); then ALLOW: with no ALLOW policy on
  the workload the request is allowed; if any ALLOW policy matches it is
  allowed; otherwise denied (403). (The RBAC filters are built in that order:
  pilot/pkg/security/authz/builder/builder.go:101-121.)
- A policy matches when any of its rules matches (no rules: never). A rule
  matches when any `from` source, any `to` operation and every `when`
  condition match (an absent list matches anything). Fields inside a source or
  an operation are ANDed; `notX` is a negative match.
- String matches: exact, prefix `abc*`, suffix `*abc`, presence `*` (non-empty).
- `hosts`/`notHosts` are matched against the `:authority` header as it is after
  the EnvoyFilter above, port included when there still is one (hostHeader is
  ":authority", pilot/pkg/security/authz/model/model.go:52), case-insensitively
  (matcher.HostMatcher, pilot/pkg/security/authz/matcher/header.go:59-90: one
  `*` at the start makes a suffix match, at the end a prefix match, each with
  ignore_case). So `*.ns.example.com` does not match `m.ns.example.com:80`.
- Conditions on `request.auth.claims[NAME]` (the policies check the `project`
  claim and the token serial `jti` so): `values` match when the claim matches
  one; `notValues` when it matches none (so an absent claim, such as a token
  without `jti`, matches `notValues`, as a negated match does). Sources: the
  `when` field (`key`, `values`, `notValues`) of AuthorizationPolicy in
  istio 1.24.6 manifests/charts/base/files/crd-all.gen.yaml; the key
  `request.auth.claims[<name>]`, HTTP only, in Istio's reference page
  "Authorization Policy Conditions"
  (https://istio.io/latest/docs/reference/config/security/conditions/); istio
  pilot/pkg/security/authz/model/generator.go, requestClaimGenerator, and
  model.go, New and rule.principal (as stored in the code index, not pinned to
  1.24.6): a metadata matcher on the JWT payload's claim, one of `values`;
  `notValues` becomes principalNot(principalOr(...)) of the same matchers, and
  a condition with neither list is left out (the program never writes one).
- Policies in the root namespace (istio-system) or the workload's own
  namespace apply when their selector's labels are all on the workload.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Optional

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The gateway's EnvoyFilter is modelled by its exact text, nothing looser.
from components.access.ingress_policies import HCM, HCM_TYPE, HOST_PORT_LUA, LUA_TYPE

ROOT_NAMESPACE = "istio-system"
UINT32_MAX = 2**32 - 1


class NotModelled(Exception):
    """A field this evaluator does not know: better to stop than to guess."""


@dataclass
class Workload:
    namespace: str
    labels: dict[str, str]


# The Istio ingress gateway this project installs (release istio-ingressgateway).
INGRESS_GATEWAY = Workload("istio-system", {"app": "istio-ingressgateway", "istio": "ingressgateway"})


@dataclass
class Request:
    host: str
    token: Optional[str] = None
    method: str = "POST"
    path: str = "/v1/models/m:predict"
    port: int = 443  # the gateway's listener port (80 plain HTTP, 443 HTTPS)
    token_in: str = "header"  # where the client put the token: "header" or "query"


@dataclass
class Decision:
    status: int  # 200: passed on to the route; 400: bad Host; 401: bad token; 403: denied by policy
    reason: str
    principal: str = ""
    claims: dict = field(default_factory=dict)
    upstream_token: Optional[str] = None  # the token as the upstream receives it, if at all
    body: str = ""  # the body of a reply the gateway makes itself (not 200)

    @property
    def allowed(self) -> bool:
        return self.status == 200


# ---------------------------------------------------------------- tokens

def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _rsa_key(jwk: dict) -> rsa.RSAPublicKey:
    n = int.from_bytes(_b64decode(jwk["n"]), "big")
    e = int.from_bytes(_b64decode(jwk["e"]), "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def verify_jwt(token: str, jwks: dict, now: float) -> dict:
    """The claims of a valid RS256 token; ValueError otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"malformed token: {error}") from None
    if header.get("alg") != "RS256":
        raise ValueError(f"algorithm {header.get('alg')!r} not accepted")
    keys = [k for k in jwks.get("keys", []) if k.get("kty") == "RSA"
            and ("kid" not in header or k.get("kid") == header["kid"])]
    for key in keys:
        try:
            _rsa_key(key).verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(),
                                 hashes.SHA256())
            break
        except InvalidSignature:
            continue
    else:
        raise ValueError("signature does not verify with any key of the JWKS")
    if "exp" in claims and not now < claims["exp"]:
        raise ValueError("expired")
    if "nbf" in claims and now < claims["nbf"]:
        raise ValueError("not valid yet")
    return claims


def authenticate(token: str, request_authentications: list[dict], now: float) -> dict:
    """Claims of a token valid under one of the jwtRules; ValueError otherwise."""
    return _authenticate(token, request_authentications, now)[0]


def _authenticate(token: str, request_authentications: list[dict],
                  now: float) -> tuple[dict, bool]:
    """(claims, forwarded) of a token valid under one of the jwtRules; ValueError otherwise."""
    try:
        issuer = json.loads(_b64decode(token.split(".")[1])).get("iss")
    except (IndexError, ValueError, UnicodeDecodeError):
        raise ValueError("malformed token") from None
    rules = [rule for ra in request_authentications for rule in ra["spec"].get("jwtRules", [])]
    for rule in rules:
        unknown = set(rule) - {"issuer", "jwks", "audiences", "forwardOriginalToken",
                               "fromHeaders"}
        if unknown:
            raise NotModelled(f"jwtRules fields {sorted(unknown)}")
    matching = [r for r in rules if r["issuer"] == issuer]
    if not matching:
        raise ValueError(f"issuer {issuer!r} is not configured")
    errors = []
    for rule in matching:
        try:
            claims = verify_jwt(token, json.loads(rule["jwks"]), now)
        except ValueError as error:
            errors.append(str(error))
            continue
        audiences = rule.get("audiences")
        if audiences:
            aud = claims.get("aud")
            aud = aud if isinstance(aud, list) else [aud]
            if not set(aud) & set(audiences):
                errors.append("audience not accepted")
                continue
        return claims, bool(rule.get("forwardOriginalToken", False))
    raise ValueError("; ".join(errors))


# ---------------------------------------------------------------- matching

def string_match(pattern: str, value: Optional[str], ignore_case: bool = False) -> bool:
    if value is None:
        return False
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    if pattern == "*":
        return value != ""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    return value == pattern


def _any(patterns: list[str], value: Optional[str], ignore_case: bool = False) -> bool:
    return any(string_match(p, value, ignore_case) for p in patterns)


@dataclass
class _Context:
    request: Request
    principal: Optional[str]  # None: no authenticated request identity
    claims: dict


def _source_matches(source: dict, ctx: _Context) -> bool:
    unknown = set(source) - {"requestPrincipals", "notRequestPrincipals"}
    if unknown:
        raise NotModelled(f"source fields {sorted(unknown)}")
    principal = ctx.principal or ""
    if "requestPrincipals" in source and not _any(source["requestPrincipals"], principal):
        return False
    if "notRequestPrincipals" in source and _any(source["notRequestPrincipals"], principal):
        return False
    return True


def _operation_matches(operation: dict, ctx: _Context) -> bool:
    unknown = set(operation) - {"hosts", "notHosts", "methods", "notMethods", "paths", "notPaths",
                                "ports", "notPorts"}
    if unknown:
        raise NotModelled(f"operation fields {sorted(unknown)}")
    request = ctx.request
    checks = [("hosts", "notHosts", request.host, True),
              ("ports", "notPorts", str(request.port), False),
              ("methods", "notMethods", request.method, False),
              ("paths", "notPaths", request.path, False)]
    for positive, negative, value, ignore_case in checks:
        if positive in operation and not _any(operation[positive], value, ignore_case):
            return False
        if negative in operation and _any(operation[negative], value, ignore_case):
            return False
    return True


def _condition_matches(condition: dict, ctx: _Context) -> bool:
    key = condition["key"]
    if not (key.startswith("request.auth.claims[") and key.endswith("]")):
        raise NotModelled(f"condition key {key}")
    claim = ctx.claims.get(key[len("request.auth.claims["):-1])
    value = claim if isinstance(claim, str) else (None if claim is None else json.dumps(claim))
    if "values" in condition and not _any(condition["values"], value):
        return False
    if "notValues" in condition and _any(condition["notValues"], value):
        return False
    return True


def rule_matches(rule: dict, ctx: _Context) -> bool:
    unknown = set(rule) - {"from", "to", "when"}
    if unknown:
        raise NotModelled(f"rule fields {sorted(unknown)}")
    if "from" in rule and not any(_source_matches(f["source"], ctx) for f in rule["from"]):
        return False
    if "to" in rule and not any(_operation_matches(t["operation"], ctx) for t in rule["to"]):
        return False
    return all(_condition_matches(c, ctx) for c in rule.get("when", []))


def _applies(resource: dict, workload: Workload) -> bool:
    namespace = resource["metadata"]["namespace"]
    if namespace not in (ROOT_NAMESPACE, workload.namespace):
        return False
    spec = resource.get("spec") or {}
    if set(spec) & {"targetRef", "targetRefs"}:
        raise NotModelled("targetRef")
    wanted = (spec.get("selector") or {}).get("matchLabels", {})
    return all(workload.labels.get(k) == v for k, v in wanted.items())


# ---------------------------------------------------------------- the gateway's EnvoyFilter

def strip_any_host_port(authority: str) -> str:
    """Envoy's HeaderUtility::stripPortFromHost for a non-CONNECT request."""
    colon = authority.rfind(":")
    if colon < 0 or authority.rfind("]") > colon:
        return authority
    port = authority[colon + 1:]
    if not re.fullmatch(r"\+?[0-9]+", port) or int(port) > UINT32_MAX:
        return authority
    return authority[:colon]


def _filter_applies(resource: dict, workload: Workload) -> bool:
    if resource["metadata"]["namespace"] not in (ROOT_NAMESPACE, workload.namespace):
        return False
    spec = resource.get("spec") or {}
    if set(spec) - {"workloadSelector", "configPatches"}:
        raise NotModelled(f"EnvoyFilter fields {sorted(set(spec) - {'workloadSelector', 'configPatches'})}")
    wanted = (spec.get("workloadSelector") or {}).get("labels", {})
    return all(workload.labels.get(k) == v for k, v in wanted.items())


HOST_MATCH = {"context": "GATEWAY", "listener": {"filterChain": {"filter": {"name": HCM}}}}
# Envoy's bodies for the replies modelled here.
RBAC_BODY = "RBAC: access denied"
JWT_BODY = "Jwt verification fails"
FORMAT_OPERATOR = re.compile(r"%[A-Z_]+(\([^)]*\))?%")


def _reply_mappers(patch: dict) -> Optional[tuple[int, list[dict]]]:
    """(listener port, mappers) of a local-reply patch on one listener, else None."""
    match = patch.get("match") or {}
    listener = dict(match.get("listener") or {})
    port = listener.pop("portNumber", None)
    value = patch.get("patch", {}).get("value", {})
    typed = value.get("typed_config") or {}
    if (port is None or {**match, "listener": listener} != HOST_MATCH
            or (patch.get("applyTo"), patch.get("patch", {}).get("operation"))
            != ("NETWORK_FILTER", "MERGE")
            or set(value) != {"typed_config"} or set(typed) != {"@type", "local_reply_config"}
            or typed["@type"] != HCM_TYPE or set(typed["local_reply_config"]) != {"mappers"}):
        return None
    return port, typed["local_reply_config"]["mappers"]


def _map_reply(status: int, body: str, authority: str, mappers: list[dict]) -> str:
    """The body after the listener's local reply mappers (the first that matches)."""
    for mapper in mappers:
        if set(mapper) - {"filter", "body_format_override"}:
            raise NotModelled(f"ResponseMapper fields {sorted(mapper)}")
        condition = mapper["filter"]
        comparison = (condition.get("status_code_filter") or {}).get("comparison") or {}
        if set(condition) != {"status_code_filter"} or comparison.get("op") != "EQ":
            raise NotModelled(f"local reply filter {condition}")
        if status != int(comparison["value"]["default_value"]):
            continue
        override = mapper.get("body_format_override")
        if override is None:
            return body
        text = override["text_format_source"]["inline_string"]
        operators = {m.group(0) for m in FORMAT_OPERATOR.finditer(text)}
        if operators - {"%LOCAL_REPLY_BODY%", "%REQ(:AUTHORITY)%"}:
            raise NotModelled(f"format operators {sorted(operators)}")
        return text.replace("%LOCAL_REPLY_BODY%", body).replace("%REQ(:AUTHORITY)%", authority)
    return body


def _envoy_filter_steps(filters: list[dict]) -> tuple[bool, bool, dict[int, list[dict]]]:
    """(strips the port, refuses a Host with a colon left, local reply mappers by
    listener port) from the known patches only."""
    strip = refuse = False
    mappers: dict[int, list[dict]] = {}
    for resource in filters:
        for patch in resource["spec"].get("configPatches", []):
            value = patch.get("patch", {}).get("value", {})
            kind = (patch.get("applyTo"), patch.get("patch", {}).get("operation"))
            on_listener = _reply_mappers(patch)
            if on_listener is not None:
                mappers.setdefault(on_listener[0], []).extend(on_listener[1])
                continue
            if patch.get("match") != HOST_MATCH:
                raise NotModelled(f"EnvoyFilter match {patch.get('match')}")
            if kind == ("NETWORK_FILTER", "MERGE") and value == {
                    "typed_config": {"@type": HCM_TYPE, "strip_any_host_port": True}}:
                strip = True
            elif kind == ("HTTP_FILTER", "INSERT_FIRST") and \
                    value.get("typed_config") == {"@type": LUA_TYPE, "default_source_code":
                                                  {"inline_string": HOST_PORT_LUA}}:
                refuse = True
            else:
                raise NotModelled(f"EnvoyFilter patch {kind}")
    return strip, refuse, mappers


def _token_read(request: Request, authentications: list[dict]) -> bool:
    """Whether a jwtRule reads the token where the request carries it. Without
    `fromHeaders`/`fromParams` Istio reads `Authorization: Bearer` and the query
    parameter `access_token`; with `fromHeaders` only, only those headers (jwtRules
    in the pinned Istio's crd-all.gen.yaml: fromHeaders, fromParams)."""
    for ra in authentications:
        for rule in ra["spec"].get("jwtRules", []):
            headers = rule.get("fromHeaders")
            if request.token_in == "header" and (headers is None or any(
                    h["name"].lower() == "authorization" and h.get("prefix") == "Bearer "
                    for h in headers)):
                return True
            if request.token_in == "query" and headers is None:
                return True
    return False


def decide(request: Request, resources: list[dict], now: float,
           workload: Workload = INGRESS_GATEWAY) -> Decision:
    """What the workload does with `request`, given the security resources (manifests)."""
    filters = [r for r in resources if r["kind"] == "EnvoyFilter" and _filter_applies(r, workload)]
    strip, refuse, mappers = _envoy_filter_steps(filters)
    if strip:
        request = Request(strip_any_host_port(request.host), request.token, request.method,
                          request.path, request.port, request.token_in)
    decision = _decide(request, resources, now, workload, refuse)
    if decision.status != 200:
        decision.body = _map_reply(decision.status, decision.body, request.host,
                                   mappers.get(request.port, []))
    return decision


def _decide(request: Request, resources: list[dict], now: float, workload: Workload,
            refuse: bool) -> Decision:
    if refuse and ":" in request.host and not request.host.startswith("["):
        return Decision(400, f"the Lua filter refused the Host {request.host!r}",
                        body="the Host header's port is not a number\n")
    resources = [r for r in resources if r["kind"] != "EnvoyFilter"]
    applying = [r for r in resources if _applies(r, workload)]
    authentications = [r for r in applying if r["kind"] == "RequestAuthentication"]
    policies = [r for r in applying if r["kind"] == "AuthorizationPolicy"]
    principal, claims, forwarded = None, {}, False
    if request.token is not None and not _token_read(request, authentications):
        # Not where the rules look: as if no token was sent (it is not checked either).
        request = Request(request.host, None, request.method, request.path, request.port)
    if request.token is not None:
        try:
            claims, forwarded = _authenticate(request.token, authentications, now)
        except ValueError as error:
            return Decision(401, f"RequestAuthentication rejected the token: {error}",
                            body=JWT_BODY)
        principal = f"{claims['iss']}/{claims['sub']}"
    ctx = _Context(request, principal, claims)
    by_action: dict[str, list[dict]] = {"CUSTOM": [], "DENY": [], "ALLOW": [], "AUDIT": []}
    for policy in policies:
        by_action[(policy.get("spec") or {}).get("action", "ALLOW")].append(policy)
    if by_action["CUSTOM"]:
        raise NotModelled("CUSTOM policies")
    for policy in by_action["DENY"]:
        if any(rule_matches(rule, ctx) for rule in policy["spec"].get("rules", [])):
            return Decision(403, f"denied by {policy['metadata']['name']}", principal or "",
                            claims, body=RBAC_BODY)
    upstream = request.token if forwarded else None
    if not by_action["ALLOW"]:
        return Decision(200, "no ALLOW policy on the workload", principal or "", claims, upstream)
    for policy in by_action["ALLOW"]:
        if any(rule_matches(rule, ctx) for rule in policy["spec"].get("rules", [])):
            return Decision(200, f"allowed by {policy['metadata']['name']}", principal or "",
                            claims, upstream)
    return Decision(403, "no ALLOW policy matches", principal or "", claims, body=RBAC_BODY)
