"""The NetworkPolicies of components/access/network_policies.py, on the cluster.

    per project:   its Namespace -> NetworkPolicy kserve-project-ingress
    Serverless:    Knative core  -> NetworkPolicy kserve-cluster-activator (knative-serving)
    Serverless:    Istio gateway -> NetworkPolicy kserve-cluster-local-gateway (istio-system)
    the models wait for all of them.
"""
from __future__ import annotations

from typing import Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.access import network_policies as np
from components.access.config import AccessConfig
from components.access.ingress_policies import GATEWAY_NAMESPACE
from components.serving.context import ClusterHandle, k8s_options


class NetworkPolicies(pulumi.ComponentResource):
    def __init__(self, cluster: ClusterHandle, access: AccessConfig,
                 namespaces: Mapping[str, pulumi.Resource], serverless: bool, monitoring: bool,
                 gateway: pulumi.Resource, knative_core: Optional[pulumi.Resource],
                 opts: Optional[pulumi.ResourceOptions] = None):
        """`namespaces`: the project namespaces by name; `gateway`: the Istio gateway
        release (istio-system exists after it); `knative_core`: Knative Serving's core
        (knative-serving and the activator), in Serverless."""
        super().__init__("kserve-cluster:access:NetworkPolicies", "network-policies", None, opts)
        self.policies: list[pulumi.Resource] = []

        def policy(resource_name: str, name: str, namespace: str, spec: dict, after: list):
            self.policies.append(k8s.networking.v1.NetworkPolicy(
                resource_name,
                metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace),
                spec=spec, opts=k8s_options(self, cluster, depends_on=[cluster.ready, *after])))

        for project in access.projects:
            after = [namespaces[project.name]] if project.name in namespaces else []
            policy(f"network-policy-{project.name}", np.PROJECT_POLICY_NAME, project.namespace,
                   np.project_policy_spec(serverless, monitoring), after)
        if serverless and knative_core is not None:
            policy("network-policy-activator", np.ACTIVATOR_POLICY_NAME, np.KNATIVE_NAMESPACE,
                   np.activator_policy_spec(monitoring), [knative_core])
            # net-istio's local gateway (Serverless only) on the gateway's pods.
            policy("network-policy-local-gateway", np.LOCAL_GATEWAY_POLICY_NAME,
                   GATEWAY_NAMESPACE, np.local_gateway_policy_spec(), [gateway])
        self.register_outputs({"policies": len(self.policies)})
