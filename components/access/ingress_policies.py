"""Istio security resources at the ingress gateway, as data (pure).

Istio evaluates the AuthorizationPolicies of a workload as: CUSTOM, then DENY
(any match denies), then ALLOW (if the workload has any ALLOW policy, a request
that matches none is denied). The gateway carries every model, in projects or
not, so an ALLOW policy would close everything it does not name. The policies
here are therefore DENY only, one per project, and each protects the project's
namespace as a whole:

    deny when Host is under `.<namespace>.<domain>`
              and is not one of the project's public models' hosts
         and (the request principal is none of the project's tokens
              or the token's `project` claim is another project's
              or the token's serial, `jti`, is not one the stack file issues now)

Every host the gateway routes to a model of the namespace ends so (Knative's and
KServe's templates, both `<name>.<namespace>.<domain>`; tags such as `prev-`,
`latest-`; transformers and explainers; models a member makes by hand), so no
list of hosts can fall behind. A request without a token has no principal and is
denied; a token of project B names B's principal and claim, and is denied on A's
hosts. Models outside projects are in no policy: open, as before. Public models
are exceptions by exact host: what is not listed stays closed. The
RequestAuthentication makes a token that is present but invalid (bad signature,
unknown issuer, expired) a 401 on any host; a missing token passes it. The
serial revokes: a token issued before its `expires` changed, or before it was
removed, has the right principal and project but an old `jti` (see tokens.py).

Cluster-local hosts: the same pods serve net-istio's knative-local-gateway (port 8081,
selector `istio: ingressgateway`: knative-extensions/net-istio at the pinned tag,
config/203-local-gateway.yaml), which routes `<service>.<namespace>`,
`<service>.<namespace>.svc` and `<service>.<namespace>.svc.cluster.local` (net-istio
pkg/reconciler/ingress/resources/virtual_service.go, hostPrefix; the pinned KServe,
pkg/constants/constants.go:580, HostRegExp). The policy's hosts are therefore also
`*.<namespace>`, `*.<namespace>.svc` and `*.<namespace>.svc.cluster.local`: a pod
shows the project's token like a client outside. KServe's top-level host goes through
the gateway twice (its route sends the request on to the local gateway as
`<name>-predictor.<namespace>.svc.cluster.local`: reconcilers/ingress/
ingress_reconciler.go:417-430), so the RequestAuthentication keeps the token on the
request (`forwardOriginalToken`; without it Istio removes the header after checking
it: the pinned Istio, pilot/pkg/security/authn/policy_applier.go:165), and the second
pass sees the same token. NetworkPolicies (network_policies.py) keep pods from going
around the gateway.

Ports: Istio matches `hosts` on the `:authority` header as sent, with one `*` at
the start or the end (the pinned Istio, pilot/pkg/security/authz/matcher/header.go:59,
model/model.go:52), so `*.team-a.example.com` does not match
`m.team-a.example.com:31903`, while the gateway routes it to m (Istio sets
`ignore_port_in_host_matching`, pilot/pkg/networking/core/gateway.go:547). The
gateway therefore strips the port first: `host_port_filter_spec`.
"""
from __future__ import annotations

from components.access.config import AccessConfig, Project
from components.access.tokens import PROJECT_CLAIM, SERIAL_CLAIM, issuer, principal, serials
from components.serving.config import SERVERLESS, Model, ServingConfig
from components.serving.v1_protocol import model_host

SECURITY_API = "security.istio.io/v1"
NETWORKING_API = "networking.istio.io/v1alpha3"
GATEWAY_NAMESPACE = "istio-system"
# The labels of the istio-ingressgateway release (components/serving/istio.py).
GATEWAY_LABELS = {"istio": "ingressgateway"}
GATEWAY_SELECTOR = {"matchLabels": GATEWAY_LABELS}
REQUEST_AUTHENTICATION_NAME = "kserve-cluster-tokens"
HOST_PORT_FILTER_NAME = "kserve-cluster-host-port"
HTTPS_ONLY_FILTER_NAME = "kserve-cluster-https-only"
# KServe's components (KServe at the pinned tag, pkg/constants/constants.go:238-240) and the
# Knative tags KServe sets (reconcilers/knative/ksvc_reconciler.go:126,136,147).
COMPONENTS = ("predictor", "transformer", "explainer")
TAGS = ("prev", "latest")
# The cluster's DNS domain: kubeadm's default (networking.dnsDomain), which the program
# leaves as it is.
CLUSTER_DOMAIN = "cluster.local"
# The cluster-local forms of a service's host (after `<service>.<namespace>`).
LOCAL_SUFFIXES = ("", ".svc", f".svc.{CLUSTER_DOMAIN}")

HCM = "envoy.filters.network.http_connection_manager"
HCM_TYPE = ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager")
LUA_TYPE = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"
# Run after Envoy's strip_any_host_port, which removes a port only when it is a number
# (envoy source/common/http/header_utility.cc, HeaderUtility::stripPortFromHost: SimpleAtoi),
# while the route lookup ignores whatever follows the last ':' (router/config_impl.cc,
# RouteMatcher::findVirtualHost with getPortStart). `m.team-a.example.com:x` would reach m
# past a policy that does not see it under `.team-a.example.com`: refuse it here. An IPv6
# literal (`[...]`) is left alone: no model is named so.
HOST_PORT_LUA = """\
function envoy_on_request(handle)
  local authority = handle:headers():get(":authority")
  if authority ~= nil and string.find(authority, ":", 1, true) ~= nil
      and string.sub(authority, 1, 1) ~= "[" then
    handle:respond({[":status"] = "400"}, "the Host header's port is not a number\\n")
  end
end
"""


def policy_name(project: str) -> str:
    return f"kserve-project-{project}"


def namespace_pattern(namespace: str, domain: str) -> str:
    """Every public host of a namespace: Istio's suffix match `*.<namespace>.<domain>`."""
    return f"*.{namespace}.{domain}"


def namespace_patterns(namespace: str, domain: str) -> list[str]:
    """Every host of a namespace, public and cluster-local."""
    return [namespace_pattern(namespace, domain),
            *(f"*.{namespace}{suffix}" for suffix in LOCAL_SUFFIXES)]


def local_hosts(service: str, namespace: str) -> list[str]:
    return [f"{service}.{namespace}{suffix}" for suffix in LOCAL_SUFFIXES]


def model_hosts(model: Model, serving: ServingConfig) -> list[str]:
    """The external hosts the gateway routes to a model, as the pinned KServe and
    Knative name them: the InferenceService's, and each component's
    (`<name>-predictor`, `-transformer`, `-explainer`), in Serverless also with the
    tags KServe sets (`prev-`, `latest-`; Knative's tag-template `{{.Tag}}-{{.Name}}`).
    In Serverless also each name's cluster-local hosts, which the local gateway routes."""
    def hosts_of(name: str) -> list[str]:
        external = [model_host(serving.deployment_mode, name, model.namespace,
                               serving.ingress_domain)]
        if serving.deployment_mode == SERVERLESS:
            return external + local_hosts(name, model.namespace)
        return external

    hosts = hosts_of(model.name)
    for component in COMPONENTS:
        service = f"{model.name}-{component}"
        hosts.extend(hosts_of(service))
        if serving.deployment_mode == SERVERLESS:
            for tag in TAGS:
                hosts.extend(hosts_of(f"{tag}-{service}"))
    return hosts


def public_hosts(project: Project, access: AccessConfig, serving: ServingConfig) -> list[str]:
    """The hosts of the project's public models that no protected model of the
    project also has (a name like `prev-x` could share one): the policy's exceptions."""
    models = [m for m in serving.models if m.namespace == project.namespace]
    protected = {h for m in models if access.protects(m) for h in model_hosts(m, serving)}
    hosts = [h for m in models if not access.protects(m) for h in model_hosts(m, serving)]
    return [h for h in dict.fromkeys(hosts) if h not in protected]


# The token is read from `Authorization: Bearer <token>` only: `fromHeaders` replaces
# Istio's defaults, which also read the `access_token` query parameter (jwtRules
# fromHeaders/fromParams in the pinned Istio's crd-all.gen.yaml). A token in a URL
# ends up in logs and browser histories.
TOKEN_HEADERS = [{"name": "Authorization", "prefix": "Bearer "}]
# The gateway's plain HTTP port (the Service's targetPort, where the listener is):
# a protected model's hosts are refused there, the token would travel in clear.
HTTP_PORT = 80
# What the clients look for in a 403's body (components/serving/endpoints.py).
USE_HTTPS = "use https"
# Envoy's RuntimeUInt32 needs a runtime key (nothing sets it: the default applies).
HTTPS_ONLY_RUNTIME_KEY = "kserve_cluster.https_only.status"


def request_authentication_spec(stack: str, jwks: str) -> dict:
    # forwardOriginalToken: the token stays on the request for the second pass through
    # the gateway (KServe's top-level host -> the local gateway); the model sees it.
    return {"selector": GATEWAY_SELECTOR,
            "jwtRules": [{"issuer": issuer(stack), "jwks": jwks, "forwardOriginalToken": True,
                          "fromHeaders": [dict(h) for h in TOKEN_HEADERS]}]}


def authorization_policy_spec(stack: str, project: Project, domain: str,
                              public: list[str] = (), generation: int = 1,
                              https_only: bool = False) -> dict:
    """The project's DENY policy: every host under `.<namespace>.<domain>`, and every
    cluster-local host of the namespace, but the `public` ones needs one of the
    project's current tokens (`generation`: the signing key's, part of each token's
    serial)."""
    if not project.namespace or not domain:
        raise ValueError(f"project {project.name!r}: no namespace or domain, so no policy")
    operation: dict = {"hosts": namespace_patterns(project.namespace, domain)}
    if public:
        operation["notHosts"] = list(public)
    to = [{"operation": operation}]
    principals = [principal(stack, project.name, t.name) for t in project.tokens]
    if not principals:
        # No token opens these hosts: deny every request to them.
        rules = [{"to": to}]
    else:
        rules = [
            {"from": [{"source": {"notRequestPrincipals": principals}}], "to": to},
            {"to": to, "when": [{"key": f"request.auth.claims[{PROJECT_CLAIM}]",
                                 "notValues": [project.name]}]},
            {"to": to, "when": [{"key": f"request.auth.claims[{SERIAL_CLAIM}]",
                                 "notValues": serials(stack, project, generation)}]},
        ]
    if https_only:
        # Over plain HTTP the external hosts are refused with or without a token (403):
        # the client is to use https. Cluster-local hosts (port 8081) are not external.
        http = {"hosts": [namespace_pattern(project.namespace, domain)],
                "ports": [str(HTTP_PORT)]}
        if public:
            http["notHosts"] = list(public)
        rules.append({"to": [{"operation": http}]})
    return {"selector": GATEWAY_SELECTOR, "action": "DENY", "rules": rules}


def authorization_policies(stack: str, access: AccessConfig,
                           serving: ServingConfig) -> dict[str, dict]:
    """Policy specs by project name: one for every project, models in the stack file
    or not (a member may deploy one by hand)."""
    return {project.name: authorization_policy_spec(
                stack, project, serving.ingress_domain, public_hosts(project, access, serving),
                access.settings.signing_key_generation, https_only=serving.serverless)
            for project in access.projects}


def https_only_reply(https_node_port: int) -> str:
    """The 403 body on the HTTP port, as an Envoy format string: Envoy's own text
    (`%LOCAL_REPLY_BODY%`, "RBAC: access denied"), then where to go instead. The
    authority has lost its port already (host_port_filter_spec)."""
    return (f"%LOCAL_REPLY_BODY%: {USE_HTTPS}: %REQ(:AUTHORITY)% answers over https only, "
            f"on the gateway's HTTPS node port {https_node_port} "
            f"(https://%REQ(:AUTHORITY)%:{https_node_port}/, certificate from the stack's "
            "ingressCaCertificate output)\n")


def https_only_reply_spec(https_node_port: int) -> dict:
    """An EnvoyFilter for the gateway's HTTP listener: its 403s say to use https.

    In Serverless every 403 Envoy itself answers on port 80 comes from the projects'
    DENY policies, which refuse a protected host there token or not
    (authorization_policy_spec, https_only), so "use https" is the whole story: the
    connection manager's local reply mapper (envoy.extensions.filters.network.
    http_connection_manager.v3.LocalReplyConfig: `mappers`, each a ResponseMapper with
    an access-log `filter` and a `body_format_override`; a local reply only, never a
    model's own 403) rewrites the body of those 403s. The HTTPS listener (443) and the
    cluster-local one (8081) keep Envoy's body: there a 403 is about the token.
    """
    match = {"context": "GATEWAY",
             "listener": {"portNumber": HTTP_PORT, "filterChain": {"filter": {"name": HCM}}}}
    mapper = {
        "filter": {"status_code_filter": {"comparison": {
            "op": "EQ", "value": {"default_value": 403, "runtime_key": HTTPS_ONLY_RUNTIME_KEY}}}},
        "body_format_override": {"text_format_source": {
            "inline_string": https_only_reply(https_node_port)}},
    }
    return {
        "workloadSelector": {"labels": dict(GATEWAY_LABELS)},
        "configPatches": [
            {"applyTo": "NETWORK_FILTER", "match": match,
             "patch": {"operation": "MERGE", "value": {
                 "typed_config": {"@type": HCM_TYPE,
                                  "local_reply_config": {"mappers": [mapper]}}}}},
        ],
    }


def host_port_filter_spec() -> dict:
    """An EnvoyFilter for the gateway: the port leaves the Host before policy and routing.

    Istio had a pilot switch for this, ISTIO_GATEWAY_STRIP_HOST_PORT (it set the
    connection manager's `strip_any_host_port`, istio 1.16.0
    pilot/pkg/networking/core/v1alpha3/gateway.go:628); it was removed before 1.18
    (istio/istio#44106) and is not in the pinned Istio. The same connection-manager field is set
    here, and a Lua filter refuses (400) a Host whose "port" was not a number.
    """
    match = {"context": "GATEWAY", "listener": {"filterChain": {"filter": {"name": HCM}}}}
    return {
        "workloadSelector": {"labels": dict(GATEWAY_LABELS)},
        "configPatches": [
            {"applyTo": "NETWORK_FILTER", "match": match,
             "patch": {"operation": "MERGE", "value": {
                 "typed_config": {"@type": HCM_TYPE, "strip_any_host_port": True}}}},
            {"applyTo": "HTTP_FILTER", "match": match,
             "patch": {"operation": "INSERT_FIRST", "value": {
                 "name": "kserve-cluster.host-port",
                 "typed_config": {"@type": LUA_TYPE,
                                  "default_source_code": {"inline_string": HOST_PORT_LUA}}}}},
        ],
    }
