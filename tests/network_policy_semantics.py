"""Kubernetes NetworkPolicy semantics as a small evaluator, for the tests (pure).

This is NOT CALICO: it is our reading of the Kubernetes documentation
(kubernetes.io/docs/concepts/services-networking/network-policies/, "The two
sorts of pod isolation", "The NetworkPolicy resource", "Behavior of to and from
selectors", "Targeting a range of ports") and of the networking.k8s.io/v1 API
reference, as code. It shows what the policies the program declares allow under
those rules; whether Calico enforces them so was not run here.

The rules it models:
- A policy applies to the pods of its own namespace that its `podSelector`
  selects (an empty selector selects every pod of the namespace).
- `policyTypes`: when absent, `Ingress` is always set and `Egress` only if the
  policy has an `egress` section.
- Isolation: a pod is isolated for ingress (egress) only when some policy that
  applies to it has `Ingress` (`Egress`) in its policyTypes. A pod that is not
  isolated in a direction allows every connection in that direction.
- An isolated pod allows an inbound connection when it comes from the pod's own
  node, or when some rule in the `ingress` list of some applying policy allows
  it: the union of the policies, in no order. Outbound likewise with `egress`
  (without the node exception). A connection between two pods needs both: the
  source's egress and the destination's ingress.
- A rule allows traffic that matches its `from` (`to`) AND its `ports`; an
  absent or empty `from` (`to`) matches every source (destination), an absent
  or empty `ports` every port. Within `from`, the peers are ORed.
- A peer: `podSelector` alone selects pods in the policy's namespace;
  `namespaceSelector` alone every pod of the selected namespaces; both in ONE
  peer select the pods that match the pod selector in the namespaces that
  match the namespace selector (AND); `ipBlock` a CIDR minus its `except`
  (pod-to-pod traffic is matched by selectors; ipBlock is modelled for sources
  outside the pod network only).
- A port: `protocol` defaults to TCP; `port` a number (or a name, resolved
  against the destination pod's named container ports); `endPort` makes the
  range port..endPort (numbers only).
- Label selectors: `matchLabels` and `matchExpressions` (In, NotIn, Exists,
  DoesNotExist), ANDed; `{}` selects everything. Namespaces carry the label
  `kubernetes.io/metadata.name: <name>` (set by the API server).

Anything else (a field it does not know) raises NotModelled.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Optional

NAME_LABEL = "kubernetes.io/metadata.name"


class NotModelled(Exception):
    """A field this evaluator does not know: better to stop than to guess."""


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict = field(default_factory=dict, hash=False, compare=False)
    node: str = "node-1"
    ports: dict = field(default_factory=dict, hash=False, compare=False)  # named ports: name -> number
    ip: str = ""  # only for ipBlock rules


@dataclass(frozen=True)
class Host:
    """A source that is not a pod: a node's own address (host network, kubelet
    probes, a node port's SNAT), or an address outside the cluster."""
    name: str
    ip: str
    node: Optional[str] = None  # the node it is, if it is one


@dataclass
class Verdict:
    allowed: bool
    reason: str


def selector_matches(selector: Optional[dict], labels: dict) -> bool:
    if selector is None:
        return True
    unknown = set(selector) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise NotModelled(f"selector fields {sorted(unknown)}")
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and key in labels and labels[key] in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise NotModelled(f"selector operator {operator}")
    return True


def policy_types(spec: dict) -> list[str]:
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if "egress" in spec else [])]


class Cluster:
    """Namespaces (name -> labels), the NetworkPolicies (manifests) and who asks."""

    SPEC_FIELDS = {"podSelector", "policyTypes", "ingress", "egress"}
    RULE_FIELDS = {"from", "to", "ports"}
    PEER_FIELDS = {"podSelector", "namespaceSelector", "ipBlock"}
    PORT_FIELDS = {"protocol", "port", "endPort"}

    def __init__(self, namespaces: dict[str, dict], policies: list[dict]):
        self.namespaces = {name: {**labels, NAME_LABEL: name} for name, labels in namespaces.items()}
        for policy in policies:
            if policy.get("kind", "NetworkPolicy") != "NetworkPolicy":
                raise NotModelled(f"kind {policy.get('kind')}")
            spec = policy["spec"]
            if set(spec) - self.SPEC_FIELDS:
                raise NotModelled(f"spec fields {sorted(set(spec) - self.SPEC_FIELDS)}")
            if "podSelector" not in spec:
                raise NotModelled("a NetworkPolicy without podSelector (the API requires it)")
        self.policies = policies

    def applying(self, pod: Pod, direction: str) -> list[dict]:
        return [p for p in self.policies
                if p["metadata"]["namespace"] == pod.namespace
                and selector_matches(p["spec"]["podSelector"], pod.labels)
                and direction in policy_types(p["spec"])]

    def _peer_matches(self, peer: dict, policy_namespace: str, other) -> bool:
        if set(peer) - self.PEER_FIELDS:
            raise NotModelled(f"peer fields {sorted(set(peer) - self.PEER_FIELDS)}")
        if "ipBlock" in peer:
            if set(peer) != {"ipBlock"}:
                raise NotModelled("ipBlock with a selector")
            if isinstance(other, Pod):
                raise NotModelled("ipBlock against a pod")
            block = peer["ipBlock"]
            address = ipaddress.ip_address(other.ip)
            return address in ipaddress.ip_network(block["cidr"]) and not any(
                address in ipaddress.ip_network(e) for e in block.get("except", []))
        if not isinstance(other, Pod):
            return False  # selectors select pods only
        if "namespaceSelector" in peer:
            labels = self.namespaces.get(other.namespace)
            if labels is None:
                raise NotModelled(f"namespace {other.namespace} not described")
            if not selector_matches(peer["namespaceSelector"], labels):
                return False
        elif other.namespace != policy_namespace:
            return False
        return selector_matches(peer.get("podSelector"), other.labels) if "podSelector" in peer else True

    def _port_matches(self, entry: dict, port: int, protocol: str, pod: Pod) -> bool:
        if set(entry) - self.PORT_FIELDS:
            raise NotModelled(f"port fields {sorted(set(entry) - self.PORT_FIELDS)}")
        if entry.get("protocol", "TCP") != protocol:
            return False
        if "port" not in entry:
            if "endPort" in entry:
                raise NotModelled("endPort without port")
            return True
        first = entry["port"]
        if isinstance(first, str):
            if "endPort" in entry:
                raise NotModelled("endPort with a named port")
            return pod.ports.get(first) == port
        return first <= port <= entry.get("endPort", first)

    def _rules_allow(self, policies: list[dict], section: str, peers_key: str, other,
                     port: int, protocol: str, destination: Pod) -> Optional[str]:
        for policy in policies:
            for rule in policy["spec"].get(section) or []:
                if set(rule) - self.RULE_FIELDS:
                    raise NotModelled(f"rule fields {sorted(set(rule) - self.RULE_FIELDS)}")
                peers = rule.get(peers_key) or []
                ports = rule.get("ports") or []
                if peers and not any(self._peer_matches(p, policy["metadata"]["namespace"], other)
                                     for p in peers):
                    continue
                if ports and not any(self._port_matches(e, port, protocol, destination) for e in ports):
                    continue
                return policy["metadata"]["name"]
        return None

    def connect(self, source, destination: Pod, port: int, protocol: str = "TCP") -> Verdict:
        """May `source` (a Pod or a Host) open a connection to `destination`:`port`?"""
        if isinstance(source, Pod):
            egress = self.applying(source, "Egress")
            if egress and not self._rules_allow(egress, "egress", "to", destination, port,
                                                protocol, destination):
                return Verdict(False, f"{source.name}'s egress is isolated and no rule allows it")
        ingress = self.applying(destination, "Ingress")
        if not ingress:
            return Verdict(True, f"{destination.name} is not isolated for ingress")
        node = source.node
        if node is not None and node == destination.node and isinstance(source, Host):
            return Verdict(True, "from the pod's own node")
        allowed_by = self._rules_allow(ingress, "ingress", "from", source, port, protocol, destination)
        if allowed_by:
            return Verdict(True, f"allowed by {allowed_by}")
        names = ", ".join(p["metadata"]["name"] for p in ingress)
        return Verdict(False, f"{destination.name} is isolated by {names} and no rule allows it")
