"""The namespaces the cluster's own layers own, and the one check every feature
that puts something in a namespace runs against them (pure).

The program declares a Namespace for each project and for each namespace of a
model, runtime, model store or storage secret. In a namespace a layer already
creates, that is a second owner: the Namespace is declared twice (or collides
with the layer's chart), and removing the stack file's item would delete the
namespace with the layer in it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from components.problems import Problems

MONITORING_NAMESPACE = "monitoring"  # components/monitoring creates it when enabled
KUBERNETES_PREFIX = "kube-"          # kube-system, kube-public, kube-node-lease, ...

# Who creates each namespace. tests/test_program_namespaces.py checks that every
# namespace the program's own layers declare (Namespace or chart) is listed here.
_KUBERNETES = "Kubernetes creates it for itself"
_SERVING = "the serving layer creates it"
_NETWORK = "the network layer (Calico) creates it"
_STORAGE = "the storage layer creates it"
_GPU = "the GPU layer creates it"
LAYER_NAMESPACES = {
    "default": _KUBERNETES,
    "istio-system": _SERVING, "knative-serving": _SERVING, "kserve": _SERVING,
    "cert-manager": _SERVING,
    "tigera-operator": _NETWORK, "calico-system": _NETWORK, "calico-apiserver": _NETWORK,
    "local-path-storage": _STORAGE, "nfs-provisioner": _STORAGE,
    "nvidia-device-plugin": _GPU,
}


@dataclass(frozen=True)
class ReservedNamespaces:
    """The namespaces of this stack's layers; monitoring's only when it is enabled."""
    monitoring: bool = False

    def owner(self, namespace: str) -> Optional[str]:
        """Why `namespace` is not the stack file's to give, or None when it is."""
        if self.monitoring and namespace == MONITORING_NAMESPACE:
            return "the monitoring stack creates it (monitoring.enabled: true)"
        if namespace.startswith(KUBERNETES_PREFIX):
            return "kube-* namespaces are reserved by Kubernetes"
        return LAYER_NAMESPACES.get(namespace)


def check_namespace(problems: Problems, key: str, namespace: str,
                    reserved: ReservedNamespaces, what: str) -> str:
    """`namespace`, or "" (and a problem at `key`) when a layer owns it.
    `what`: the item, e.g. "model store"."""
    owner = reserved.owner(namespace) if namespace else None
    if owner is None:
        return namespace
    also = (", or set monitoring.enabled: false"
            if namespace == MONITORING_NAMESPACE else "")
    problems.add(key, namespace,
                 f"not a namespace for a {what}: {owner}. The {what} would make this stack a "
                 f"second owner of it (declared twice, and removing the {what} would delete "
                 "the namespace with everything in it).",
                 f"give the {what} a namespace of its own, e.g. 'team-a'{also}.")
    return ""


def monitoring_requested(raw_monitoring: object) -> bool:
    """Whether the stack file turns monitoring on, read before `monitoring` is
    parsed (its own parser reports a bad value): the namespace checks of the
    earlier sections need it."""
    return isinstance(raw_monitoring, dict) and raw_monitoring.get("enabled") is True
