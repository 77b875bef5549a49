"""HTTPS at the ingress gateway: the certificate, and the HTTPS server on net-istio's Gateway.

    [after cert-manager's webhook serves]
    self-signed Issuer -> CA Certificate (its Secret: the stack's ingress CA)
                       -> CA Issuer -> the gateway's Certificate (Secret in istio-system)
    or, with serving.tls: the operator's certificate and key as that Secret
    [after net-istio]  knative-ingress-gateway: the HTTP server as shipped, and an HTTPS
                       server on 443 with that Secret as its credential

The gateway pods read a credential from a Secret of their own namespace (Istio's
`credentialName`), so everything lives in istio-system. net-istio only edits the
servers of its Gateway whose port name is `<namespace>/<ingress>:<n>`
(net-istio at the pinned tag, pkg/reconciler/ingress/resources/gateway.go,
belongsToIngress and UpdateGateway); a server named `https` is left alone, and every
route on the default external gateway is served on it. Knative documents adding
such a server to knative-ingress-gateway for a certificate of one's own.
"""
from __future__ import annotations

import base64
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.serving.config import ServingConfig
from components.serving.context import ClusterHandle, k8s_options

CERT_MANAGER_API = "cert-manager.io/v1"
ISTIO_NETWORKING_API = "networking.istio.io/v1beta1"
NAMESPACE = "istio-system"  # the gateway pods' namespace: credentialName is read there
SELF_SIGNED_ISSUER = "kserve-cluster-selfsigned"
CA_CERTIFICATE = "kserve-cluster-ingress-ca"
CA_SECRET = "kserve-cluster-ingress-ca"
CA_ISSUER = "kserve-cluster-ingress-ca"
GATEWAY_CERTIFICATE = "kserve-cluster-ingress"
CREDENTIAL_SECRET = "kserve-cluster-ingress-tls"
# net-istio's external gateway (config/202-gateway.yaml at the pinned tag).
KNATIVE_GATEWAY = "knative-ingress-gateway"
KNATIVE_NAMESPACE = "knative-serving"
HTTPS_PORT = 443
# pulumi-kubernetes waits for a condition named here before the next step.
WAIT_READY = {"pulumi.com/waitFor": "condition=Ready"}


def dns_names(serving: ServingConfig) -> list[str]:
    """The names the gateway's certificate carries. A wildcard covers one label only
    (RFC 6125 6.4.3), and a model is `<name>.<namespace>.<domain>`: each namespace
    with models needs its own `*.<namespace>.<domain>`; `*.<domain>` and the domain
    cover hosts one level down."""
    domain = serving.ingress_domain
    namespaces = sorted({m.namespace for m in serving.models})
    return [domain, f"*.{domain}", *(f"*.{ns}.{domain}" for ns in namespaces)]


def self_signed_issuer_spec() -> dict:
    return {"selfSigned": {}}


def ca_certificate_spec(stack: str) -> dict:
    return {"isCA": True, "commonName": f"kserve-cluster {stack} ingress CA",
            "secretName": CA_SECRET, "duration": "87600h",
            "privateKey": {"algorithm": "ECDSA", "size": 256},
            "issuerRef": {"name": SELF_SIGNED_ISSUER, "kind": "Issuer",
                          "group": "cert-manager.io"}}


def ca_issuer_spec() -> dict:
    return {"ca": {"secretName": CA_SECRET}}


def gateway_certificate_spec(serving: ServingConfig) -> dict:
    names = dns_names(serving)
    return {"secretName": CREDENTIAL_SECRET, "dnsNames": names,
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            "issuerRef": {"name": CA_ISSUER, "kind": "Issuer", "group": "cert-manager.io"}}


def knative_gateway_spec() -> dict:
    """net-istio's external Gateway with its HTTP server as shipped and an HTTPS one."""
    return {"selector": {"istio": "ingressgateway"}, "servers": [
        {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]},
        {"port": {"number": HTTPS_PORT, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"],
         "tls": {"mode": "SIMPLE", "credentialName": CREDENTIAL_SECRET}},
    ]}


def pem_of(data: Optional[dict], key: str = "tls.crt") -> Optional[str]:
    if not data or key not in data:
        return None
    return base64.b64decode(data[key]).decode()


class GatewayTls(pulumi.ComponentResource):
    def __init__(self, cluster: ClusterHandle, serving: ServingConfig,
                 after_cert_manager: pulumi.Resource, after_istio: pulumi.Resource,
                 stack: Optional[str] = None, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:serving:GatewayTls", "gateway-tls", None, opts)
        stack = stack or pulumi.get_stack()
        self.ca_certificate: Optional[pulumi.Output] = None
        after = [after_cert_manager, after_istio]

        def custom(name: str, kind: str, resource_name: str, spec, depends_on, wait=False):
            return k8s.apiextensions.CustomResource(
                name, api_version=CERT_MANAGER_API, kind=kind,
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=resource_name, namespace=NAMESPACE,
                    annotations=WAIT_READY if wait else None),
                spec=spec, opts=k8s_options(self, cluster, depends_on=depends_on))

        if serving.tls is None:
            self.self_signed = custom("ingress-selfsigned-issuer", "Issuer", SELF_SIGNED_ISSUER,
                                      self_signed_issuer_spec(), after)
            self.ca = custom("ingress-ca-certificate", "Certificate", CA_CERTIFICATE,
                             ca_certificate_spec(stack), [self.self_signed], wait=True)
            self.ca_issuer = custom("ingress-ca-issuer", "Issuer", CA_ISSUER, ca_issuer_spec(),
                                    [self.ca], wait=True)
            self.certificate = custom("ingress-certificate", "Certificate", GATEWAY_CERTIFICATE,
                                      gateway_certificate_spec(serving), [self.ca_issuer],
                                      wait=True)
            # Read once the CA is Ready; in a preview of a new stack the id is unknown
            # and nothing is read.
            secret = k8s.core.v1.Secret.get(
                "ingress-ca-secret", self.ca.metadata.apply(lambda _: f"{NAMESPACE}/{CA_SECRET}"),
                opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider,
                                            depends_on=[self.ca]))
            self.ca_certificate = secret.data.apply(pem_of)
            self.credential: pulumi.Resource = self.certificate
        else:
            tls = serving.tls
            self.credential = k8s.core.v1.Secret(
                "ingress-tls-secret",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=CREDENTIAL_SECRET, namespace=NAMESPACE),
                type="kubernetes.io/tls",
                string_data=pulumi.Output.secret({"tls.crt": tls.certificate,
                                                  "tls.key": tls.private_key}),
                opts=k8s_options(self, cluster, depends_on=[after_istio],
                                 additional_secret_outputs=["data", "stringData"]))
        self.after = [self.credential]
        self.register_outputs({})

    def serve_on_knative_gateway(self, cluster: ClusterHandle,
                                 net_istio: pulumi.Resource) -> pulumi.Resource:
        """The HTTPS server on net-istio's Gateway (Serverless), after the credential."""
        self.knative_gateway = k8s.apiextensions.CustomResourcePatch(
            "knative-ingress-gateway-https", api_version=ISTIO_NETWORKING_API, kind="Gateway",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=KNATIVE_GATEWAY, namespace=KNATIVE_NAMESPACE,
                annotations={"pulumi.com/patchForce": "true"}),
            spec=knative_gateway_spec(),
            opts=k8s_options(self, cluster, depends_on=[net_istio, self.credential]))
        return self.knative_gateway
