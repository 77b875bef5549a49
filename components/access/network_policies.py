"""NetworkPolicies that keep traffic inside the cluster on the gateway's path (pure).

The token policies (ingress_policies.py) hold only on the gateway. Without a
NetworkPolicy any pod reaches a project's pods around it: revision Services, pod
IPs, and Knative's activator, which routes on the `Knative-Serving-Namespace` and
`Knative-Serving-Revision` headers to any revision. These policies (networking.k8s.io/v1,
enforced by Calico) close those paths; docs/threat-model.md has the table of what
is allowed, and tests/test_access_network.py checks it.

- each project's namespace, every pod: only from the gateway's pods, pods of the
  same namespace, Prometheus (monitoring on) and, in Serverless, the activator
  and Knative's autoscaler (the queue-proxy's metrics port only);
- the activator (Serverless): only from the gateway's pods, and Prometheus on its
  metrics port;
- the gateway's pods: port 8081 (net-istio's knative-local-gateway) only from pods,
  every other TCP port from anywhere as before (the node port, probes, metrics).

Ingress only: egress stays open (DNS, the storage initializer, the activator's
and queue-proxy's own connections). A pod's own node may always connect to it
(kubelet probes): the Kubernetes NetworkPolicy rules, "The two sorts of pod isolation".
Pods are named by their upstream labels:
- the gateway: `istio: ingressgateway` (the pinned Istio gateway chart
  templates/_helpers.tpl:18-20, release istio-ingressgateway);
- activator and autoscaler: `app: activator`, `app: autoscaler` (knative/serving at
  the pinned tag, config/core/deployments/activator.yaml:31-33, autoscaler.yaml:35-38);
- Prometheus: `app.kubernetes.io/name: prometheus` (the pinned kube-prometheus-stack
  templates/prometheus/networkpolicy.yaml:26-32, the chart's own selector).
Namespaces by the label the API server sets on every namespace,
`kubernetes.io/metadata.name`.
"""
from __future__ import annotations

from components.access.ingress_policies import GATEWAY_LABELS, GATEWAY_NAMESPACE
from components.namespaces import MONITORING_NAMESPACE

API_VERSION = "networking.k8s.io/v1"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
KNATIVE_NAMESPACE = "knative-serving"
ACTIVATOR_LABELS = {"app": "activator"}
AUTOSCALER_LABELS = {"app": "autoscaler"}
PROMETHEUS_LABELS = {"app.kubernetes.io/name": "prometheus"}
# The queue-proxy's autoscaling metrics, scraped by the autoscaler from the pods or
# their `-private` Service (the pinned Knative, pkg/networking/constants.go:38,
# pkg/autoscaler/metrics/stats_scraper.go:198); the activator's metrics port
# (activator.yaml, container port `metrics`).
QUEUE_METRICS_PORT = 9090
ACTIVATOR_METRICS_PORT = 9090
# net-istio's knative-local-gateway listens there on the gateway's pods
# (knative-extensions/net-istio at the pinned tag, config/203-local-gateway.yaml).
LOCAL_GATEWAY_PORT = 8081
MAX_PORT = 65535

PROJECT_POLICY_NAME = "kserve-project-ingress"
ACTIVATOR_POLICY_NAME = "kserve-cluster-activator"
LOCAL_GATEWAY_POLICY_NAME = "kserve-cluster-local-gateway"


def _tcp(port: int, end: int = 0) -> dict:
    return {"protocol": "TCP", "port": port, **({"endPort": end} if end else {})}


def pods_in(namespace: str, labels: dict) -> dict:
    """A peer: the pods with `labels` in `namespace` (both selectors in ONE peer: AND)."""
    return {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}},
            "podSelector": {"matchLabels": dict(labels)}}


GATEWAY_PODS = pods_in(GATEWAY_NAMESPACE, GATEWAY_LABELS)
ACTIVATOR_PODS = pods_in(KNATIVE_NAMESPACE, ACTIVATOR_LABELS)
AUTOSCALER_PODS = pods_in(KNATIVE_NAMESPACE, AUTOSCALER_LABELS)
PROMETHEUS_PODS = pods_in(MONITORING_NAMESPACE, PROMETHEUS_LABELS)


def project_policy_spec(serverless: bool, monitoring: bool) -> dict:
    """Every pod of a project's namespace: from the gateway, its own namespace, and
    what Knative and Prometheus need."""
    ingress = [{"from": [GATEWAY_PODS]},
               {"from": [{"podSelector": {}}]}]  # the same namespace
    if serverless:
        ingress += [{"from": [ACTIVATOR_PODS]},
                    {"from": [AUTOSCALER_PODS], "ports": [_tcp(QUEUE_METRICS_PORT)]}]
    if monitoring:
        ingress.append({"from": [PROMETHEUS_PODS]})
    return {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress}


def activator_policy_spec(monitoring: bool) -> dict:
    """The activator: only the gateway's pods send it requests (both listeners route
    to it while a revision is scaled to zero or in proxy mode)."""
    ingress = [{"from": [GATEWAY_PODS]}]
    if monitoring:
        ingress.append({"from": [PROMETHEUS_PODS], "ports": [_tcp(ACTIVATOR_METRICS_PORT)]})
    return {"podSelector": {"matchLabels": dict(ACTIVATOR_LABELS)}, "policyTypes": ["Ingress"],
            "ingress": ingress}


def local_gateway_policy_spec() -> dict:
    """The gateway's pods: the local gateway's port from pods only (any namespace: KServe's
    in-cluster address, transformers and InferenceGraphs call it, and the gateway itself
    for KServe's top-level route); every other TCP port from anywhere, as without a
    policy (the gateway has no UDP listener)."""
    return {"podSelector": {"matchLabels": dict(GATEWAY_LABELS)}, "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [_tcp(1, LOCAL_GATEWAY_PORT - 1), _tcp(LOCAL_GATEWAY_PORT + 1, MAX_PORT)]},
                {"from": [{"namespaceSelector": {}}], "ports": [_tcp(LOCAL_GATEWAY_PORT)]},
            ]}
