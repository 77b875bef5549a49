"""Istio security resources at the ingress gateway, as data (pure).

Istio evaluates the AuthorizationPolicies of a workload as: CUSTOM, then DENY
(any match denies), then ALLOW (if the workload has any ALLOW policy, a request
that matches none is denied). The gateway carries every model, in projects or
not, so an ALLOW policy would close everything it does not name. The policies
here are therefore DENY only, one per project:

    deny when Host is one of the project's protected model hosts
         and (the request principal is none of the project's tokens
              or the token's `project` claim is another project's)

A request without a token has no principal and is denied on those hosts; a
token of project B names B's principal and claim, and is denied on A's hosts.
Public models and models outside projects are in no policy: open, as before.
The RequestAuthentication makes a token that is present but invalid (bad
signature, unknown issuer, expired) a 401 on any host; a missing token passes
it, and the DENY policies decide.

Hosts: exact host matches do not match a Host header with a port
(`m.ns.example.com:31903`), which the gateway still routes: each host is given
as `host` and `host:*`. Each model has two external hosts: the top-level one
and its predictor's (Knative or the raw Ingress route both through this gateway).
"""
from __future__ import annotations

from components.access.config import AccessConfig, Project
from components.access.tokens import PROJECT_CLAIM, issuer, principal
from components.serving.config import Model, ServingConfig
from components.serving.v1_protocol import model_host

SECURITY_API = "security.istio.io/v1"
GATEWAY_NAMESPACE = "istio-system"
# The labels of the istio-ingressgateway release (components/serving/istio.py).
GATEWAY_SELECTOR = {"matchLabels": {"istio": "ingressgateway"}}
REQUEST_AUTHENTICATION_NAME = "kserve-cluster-tokens"


def policy_name(project: str) -> str:
    return f"kserve-project-{project}"


def model_hosts(model: Model, serving: ServingConfig) -> list[str]:
    """The external hosts the gateway routes to a model: the InferenceService's and
    its predictor's (`<name>-predictor`), each as the pinned KServe names them."""
    hosts = [model_host(serving.deployment_mode, model.name, model.namespace,
                        serving.ingress_domain)]
    predictor = f"{model.name}-predictor"
    hosts.append(model_host(serving.deployment_mode, predictor, model.namespace,
                            serving.ingress_domain))
    return hosts


def host_patterns(hosts: list[str]) -> list[str]:
    """Each host with and without a port (Istio's `host:*` prefix match)."""
    return [pattern for host in hosts for pattern in (host, f"{host}:*")]


def protected_hosts(project: Project, access: AccessConfig, serving: ServingConfig) -> list[str]:
    return [host for model in serving.models
            if model.namespace == project.namespace and access.protects(model)
            for host in model_hosts(model, serving)]


def request_authentication_spec(stack: str, jwks: str) -> dict:
    return {"selector": GATEWAY_SELECTOR,
            "jwtRules": [{"issuer": issuer(stack), "jwks": jwks}]}


def authorization_policy_spec(stack: str, project: Project, hosts: list[str]) -> dict:
    """The project's DENY policy. `hosts` must not be empty: a rule with no hosts
    matches every host, and would shut the whole gateway."""
    if not hosts:
        raise ValueError(f"project {project.name}: no protected hosts, so no policy")
    to = [{"operation": {"hosts": host_patterns(hosts)}}]
    principals = [principal(stack, project.name, t.name) for t in project.tokens]
    if not principals:
        # No token opens these hosts: deny every request to them.
        rules = [{"to": to}]
    else:
        rules = [
            {"from": [{"source": {"notRequestPrincipals": principals}}], "to": to},
            {"to": to, "when": [{"key": f"request.auth.claims[{PROJECT_CLAIM}]",
                                 "notValues": [project.name]}]},
        ]
    return {"selector": GATEWAY_SELECTOR, "action": "DENY", "rules": rules}


def authorization_policies(stack: str, access: AccessConfig,
                           serving: ServingConfig) -> dict[str, dict]:
    """Policy specs by project name; a project with no protected model gets none."""
    policies = {}
    for project in access.projects:
        hosts = protected_hosts(project, access, serving)
        if hosts:
            policies[project.name] = authorization_policy_spec(stack, project, hosts)
    return policies

