"""The serving layers, in dependency order, on the cluster's Kubernetes provider.

    cert-manager  ||  Istio base -> istiod -> ingress gateway (NodePort: HTTP and HTTPS)
    the gateway's certificate: stack CA or the operator's  [after cert-manager, the gateway]
                                              -> token checks and policies   [with projects]
    NetworkPolicies: projects', the activator's, the gateway's     [with projects]
    Knative CRDs -> core -> net-istio, config-domain      [after Istio; Serverless only]
                         -> net-istio's Gateway gets the HTTPS server [after the certificate]
    KServe CRDs -> controller + cluster runtimes          [after cert-manager's webhook serves, after Knative]
    custom runtimes, InferenceServices                    [after KServe's webhook serves, and the policies]
    smoke prediction through the ingress                  [after the model is Ready]
"""
from __future__ import annotations

import base64
import json
from typing import Mapping, Optional

import pulumi

from components.access.config import AccessConfig
from components.access.ingress import IngressTokens
from components.access.network import NetworkPolicies
from components.access.tokens import token_key
from components.cluster.commands import node_command
from components.serving import huggingface
from components.serving.cert_manager import CertManager
from components.serving.config import Model, ServingConfig
from components.serving.context import ClusterHandle
from components.serving.gateway_tls import GatewayTls
from components.serving.istio import Istio
from components.serving.knative import KnativeServing
from components.serving.kserve import KServe
from components.serving.models import ModelWorkloads
from components.serving.scaling import uses_knative_hpa
from components.serving.v1_protocol import (
    SMOKE_IMAGE_JPEG, model_host, predict_path, predict_url, request_body, status_url)

# The smoke request is the tf-flower image; other formats take other inputs, so
# for them the smoke step asks for the model's V1 status (GET /v1/models/<name>).
IMAGE_SMOKE_FORMATS = ("tensorflow",)


def curl_command(url: str, host: str, token_variable: Optional[str] = None,
                 resolve_to: Optional[str] = None) -> str:
    """`token_variable`: the shell variable that holds the token; the command names
    it and never contains the token itself. `resolve_to`: an https URL names the
    model's host (the certificate's name), reached at this address, with the CA in
    ca.pem (`pulumi stack output ingressCaCertificate > ca.pem`)."""
    auth = f"-H \"Authorization: Bearer ${token_variable}\" " if token_variable else ""
    if resolve_to:
        port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
        address = f"[{resolve_to}]" if ":" in resolve_to else resolve_to
        return (f"curl -sS --cacert ca.pem --resolve {host}:{port}:{address} {auth}"
                f"-H 'Content-Type: application/json' -d @input.json {url}")
    return (f"curl -sS -H 'Host: {host}' {auth}-H 'Content-Type: application/json' "
            f"-d @input.json {url}")


def summarize_prediction(stdout: str) -> dict:
    """The smoke answer as an output: the parsed JSON, or the raw text."""
    try:
        return json.loads(stdout)
    except (TypeError, ValueError):
        return {"raw": stdout}


class Serving(pulumi.ComponentResource):
    def __init__(self, cluster: ClusterHandle, serving: ServingConfig,
                 access: Optional[AccessConfig] = None,
                 namespaces: Optional[Mapping[str, pulumi.Resource]] = None,
                 opts: Optional[pulumi.ResourceOptions] = None, storage=None,
                 gpu_ready: Optional[pulumi.Resource] = None, monitoring: bool = False):
        """`access`: projects and their tokens (components/access); `namespaces`: the
        project namespaces, created by the Projects component, not here; `storage`: the
        model stores the models read (components/storage); `gpu_ready`: the device plugin
        that GPU models wait for (components/gpu); `monitoring`: Prometheus runs (it may
        then scrape the projects' pods)."""
        super().__init__("kserve-cluster:serving:Serving", "serving", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.cert_manager = CertManager(cluster, opts=child, train=serving.train)
        self.istio = Istio(cluster, serving.ingress_node_port, serving.https_node_port,
                           opts=child, train=serving.train)
        self.tls = GatewayTls(cluster, serving, self.cert_manager.webhook_ready,
                              self.istio.gateway, opts=child)
        # The stack's CA (PEM; public), or None with the operator's own certificate.
        self.ingress_ca_certificate = self.tls.ca_certificate
        self.access = access = access or AccessConfig()
        self.serving_tls = serving.tls
        self.serving_serverless = serving.serverless
        self.ingress_tokens = IngressTokens(cluster, access, serving, after=[self.istio.gateway],
                                            opts=child) if access.projects else None
        self.tokens = self.ingress_tokens.tokens if self.ingress_tokens else {}
        kserve_after = [self.cert_manager.webhook_ready, self.istio.gateway]
        self.knative = None
        if serving.serverless:
            self.knative = KnativeServing(cluster, serving.ingress_domain,
                                          after_istio=self.istio.gateway, opts=child,
                                          hpa_class=uses_knative_hpa(serving),
                                          train=serving.train)
            kserve_after += [self.knative.net_istio, self.knative.config_domain,
                             self.tls.serve_on_knative_gateway(cluster, self.knative.net_istio)]
            kserve_after += [self.knative.hpa] if self.knative.hpa else []
        self.kserve = KServe(cluster, serving, after=kserve_after, opts=child)
        # Nothing reaches a project's pods around the gateway (docs/threat-model.md).
        self.network_policies = NetworkPolicies(
            cluster, access, namespaces or {}, serving.serverless, monitoring,
            gateway=self.istio.gateway, knative_core=self.knative.core if self.knative else None,
            opts=child) if access.projects else None
        # Every model waits for the token policies and the NetworkPolicies.
        guards = [*(self.ingress_tokens.policies if self.ingress_tokens else ()),
                  *(self.network_policies.policies if self.network_policies else ())]
        self.workloads = ModelWorkloads(cluster, serving, self.kserve.models_ready,
                                        self.kserve.cluster_runtimes, opts=child, storage=storage,
                                        namespaces=namespaces, after=guards, gpu_ready=gpu_ready)

        self.ingress_address = cluster.control_plane_address
        self.ingress_port = serving.ingress_node_port
        self.https_port = serving.https_node_port
        # Keyed by `namespace/name`: one model name may be used in two namespaces.
        self.models = {}
        for model in serving.models:
            host = model_host(serving.deployment_mode, model.name, model.namespace,
                              serving.ingress_domain)
            # TorchServe answers under the name in its model_snapshot, not the model's.
            protected = access.protects(model)
            url = predict_url(self.ingress_address, self.ingress_port, model.served_name)
            # A protected model answers only over HTTPS (the gateway refuses its hosts on 80):
            # `httpsUrl` names its host, which resolves to ingressAddress (curl --resolve).
            https_url = predict_url(host, self.https_port, model.served_name, scheme="https")
            self.models[model.key] = {"name": model.name, "namespace": model.namespace,
                                      "host": host, "url": url,
                                      "curl": curl_command(https_url if protected and
                                                           serving.serverless else url,
                                                           host, "TOKEN" if protected else None,
                                                           self.ingress_address if protected
                                                           and serving.serverless else None)}
            if serving.serverless:
                # HTTPS is served on net-istio's Gateway only: RawDeployment's Kubernetes
                # Ingresses carry no TLS (docs/threat-model.md), so no httpsUrl there.
                self.models[model.key]["httpsUrl"] = https_url
            if protected and serving.serverless:
                # The gateway refuses this model's hosts on port 80: clients use httpsUrl.
                self.models[model.key]["httpsOnly"] = True
            if model.served_names:
                self.models[model.key]["servedModels"] = list(model.served_names)
            # The Hugging Face runtime's OpenAI-compatible API, at the address of `url`
            # (`httpsOnly` models: at the port of `httpsUrl`, as for `url`).
            openai = huggingface.openai_endpoints(
                url.removesuffix(predict_path(model.served_name)), model)
            if openai:
                self.models[model.key]["openai"] = openai
            if access.project_of(model.namespace):
                self.models[model.key].update(project=model.namespace, needsToken=protected)
        self.smoke = None
        # A model nobody can call (in a project without tokens) is no smoke test.
        callable_models = [m for m in serving.models if access.can_be_called(m)]
        if serving.smoke_test and callable_models:
            first = callable_models[0]
            self.smoke = self._smoke_prediction(
                cluster, first, storage.model_revision(first) if storage else "")
        self.smoke_prediction = self.smoke.stdout.apply(summarize_prediction) if self.smoke else None
        self.register_outputs({"ingressAddress": self.ingress_address,
                               "ingressPort": self.ingress_port, "httpsPort": self.https_port,
                               "models": self.models})

    def _smoke_prediction(self, cluster: ClusterHandle, model: Model, files_revision: str = ""):
        """One V1 request to the first model, from the control plane, through the
        ingress gateway's node port: the path a user's request takes."""
        entry = self.models[model.key]
        revision = model.storage_uri + (
            f" canary {model.canary.storage_uri} {model.canary.traffic_percent}%"
            if model.canary else "") + (f" files {files_revision}" if files_revision else "")
        # MODEL_REVISION only makes the prediction run again when the model changes.
        https = self.access.protects(model) and self.serving_serverless
        env = {"URL": entry["httpsUrl"] if https else entry["url"], "HOST_HEADER": entry["host"],
               "MODEL_REVISION": revision}
        if https:
            # The model's host resolves to the node's address; curl checks the certificate.
            env["RESOLVE"] = f"{entry['host']}:{self.https_port}:{self.ingress_address}"
        body: Optional[str] = request_body(SMOKE_IMAGE_JPEG, key="smoke")
        if model.format not in IMAGE_SMOKE_FORMATS:
            env.update(URL=status_url(entry["host"], self.https_port, model.served_name, "https")
                       if https else
                       status_url(self.ingress_address, self.ingress_port, model.served_name),
                       METHOD="GET")
            body = None
        first_lines: list = []
        if https:
            # The CA first on stdin, base64 on one line (CA_ON_STDIN): the stack's CA, or
            # the operator's certificate as the trust anchor (curl accepts a partial chain).
            ca = self.ingress_ca_certificate if self.serving_tls is None else \
                pulumi.Output.secret(self.serving_tls.certificate)
            env["CA_ON_STDIN"] = "1"
            first_lines.append(pulumi.Output.from_input(ca).apply(
                lambda pem: base64.b64encode((pem or "").encode()).decode()))
        stdin: Optional[pulumi.Input[str]] = body
        caller = self.access.caller_token(model)
        if caller is not None:
            # The token goes next on stdin, a secret input: never on a command line.
            env["TOKEN_ON_STDIN"] = "1"
            first_lines.append(self.tokens[token_key(caller[0].name, caller[1].name)])
        if first_lines:
            stdin = pulumi.Output.secret(pulumi.Output.all(*first_lines).apply(
                lambda lines: "".join(f"{line}\n" for line in lines) + (body or "")))
        return node_command(
            f"smoke-predict-{model.namespace}-{model.name}", cluster.control_plane_connection,
            "smoke-predict.sh", env, stdin=stdin,
            opts=pulumi.ResourceOptions(parent=self, deleted_with=cluster.teardown,
                                        depends_on=[self.workloads.rollouts[model.key]]))
