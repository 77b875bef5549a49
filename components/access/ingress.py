"""Tokens at the ingress gateway: the signing key, the RequestAuthentication that
checks tokens against its public half, a DENY AuthorizationPolicy per project,
and the tokens themselves (a secret output map).

    [after Istio's gateway]  signing key -> RequestAuthentication (JWKS)
                             AuthorizationPolicy per project (its whole namespace)
                             EnvoyFilter: the gateway strips the Host's port
                             EnvoyFilter: a 403 on the HTTP port says to use https
    the serving layer creates the models only after these.

The signing key is a pulumi-tls PrivateKey (RSA 2048): the engine makes it once
and keeps it encrypted in the state, so nobody has to generate or paste a key,
and the same key signs the same tokens on every run. Raising
`access.signingKeyGeneration` replaces it, which invalidates every token issued
so far (the gateway only knows the new public key) and issues new ones.
"""
from __future__ import annotations

from typing import Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.access import ingress_policies as policies
from components.access import tokens
from components.access.config import AccessConfig
from components.serving.config import ServingConfig
from components.serving.context import ClusterHandle, k8s_options

SIGNING_KEY_BITS = 2048


class IngressTokens(pulumi.ComponentResource):
    def __init__(self, cluster: ClusterHandle, access: AccessConfig, serving: ServingConfig,
                 after: Sequence[pulumi.Resource], stack: Optional[str] = None,
                 opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("kserve-cluster:access:IngressTokens", "ingress-tokens", None, opts)
        stack = stack or pulumi.get_stack()
        # What the models wait for: no protected model is served before its policy.
        self.policies: list[pulumi.Resource] = []
        # Keyed `project/token`, each a secret.
        self.tokens: dict[str, pulumi.Output] = {}
        if access.has_tokens:
            generation = access.settings.signing_key_generation
            self.signing_key = tls.PrivateKey(
                f"token-signing-key-{generation}", algorithm="RSA", rsa_bits=SIGNING_KEY_BITS,
                opts=pulumi.ResourceOptions(parent=self))
            jwks = self.signing_key.public_key_pem.apply(tokens.jwks)
            self.policies.append(k8s.apiextensions.CustomResource(
                "request-authentication", api_version=policies.SECURITY_API,
                kind="RequestAuthentication",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=policies.REQUEST_AUTHENTICATION_NAME,
                                                    namespace=policies.GATEWAY_NAMESPACE),
                spec=jwks.apply(lambda keys: policies.request_authentication_spec(stack, keys)),
                opts=k8s_options(self, cluster, depends_on=after)))
            private_key = pulumi.Output.secret(self.signing_key.private_key_pem)
            minted = private_key.apply(
                lambda pem: tokens.project_tokens(pem, stack, access.projects, generation))
            for project in access.projects:
                for token in project.tokens:
                    key = tokens.token_key(project.name, token.name)
                    self.tokens[key] = pulumi.Output.secret(minted.apply(lambda all_, k=key: all_[k]))
        project_policies = policies.authorization_policies(stack, access, serving)
        if project_policies:
            # The port leaves the Host before the policies see it (they match the
            # namespace by suffix), and before routing.
            self.policies.append(k8s.apiextensions.CustomResource(
                "gateway-host-port-filter", api_version=policies.NETWORKING_API,
                kind="EnvoyFilter",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=policies.HOST_PORT_FILTER_NAME,
                                                    namespace=policies.GATEWAY_NAMESPACE),
                spec=policies.host_port_filter_spec(),
                opts=k8s_options(self, cluster, depends_on=after)))
            if serving.serverless:
                # Protected hosts are refused on the HTTP port (Serverless only, where
                # HTTPS is served): that 403 says to use https.
                self.policies.append(k8s.apiextensions.CustomResource(
                    "gateway-https-only-reply", api_version=policies.NETWORKING_API,
                    kind="EnvoyFilter",
                    metadata=k8s.meta.v1.ObjectMetaArgs(name=policies.HTTPS_ONLY_FILTER_NAME,
                                                        namespace=policies.GATEWAY_NAMESPACE),
                    spec=policies.https_only_reply_spec(serving.https_node_port),
                    opts=k8s_options(self, cluster, depends_on=after)))
        for project, spec in project_policies.items():
            self.policies.append(k8s.apiextensions.CustomResource(
                f"authorization-policy-{project}", api_version=policies.SECURITY_API,
                kind="AuthorizationPolicy",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=policies.policy_name(project),
                                                    namespace=policies.GATEWAY_NAMESPACE),
                spec=spec, opts=k8s_options(self, cluster, depends_on=after)))
        self.register_outputs({"tokens": sorted(self.tokens)})
