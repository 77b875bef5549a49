"""Traffic from inside the cluster: the NetworkPolicies the program declares, checked
against the allowed-paths table of docs/threat-model.md, and the cluster-local hosts
under the projects' token policies.

The NetworkPolicies are evaluated by tests/network_policy_semantics.py (our reading of
the Kubernetes NetworkPolicy documentation, NOT Calico), the Istio policies by
tests/istio_semantics.py (NOT Envoy). The objects come from the real program under the
mock runtime. The pods' labels are the pinned upstream ones:
- the ingress gateway: `app: istio-ingressgateway`, `istio: ingressgateway` (istio 1.24.6
  manifests/charts/gateway/templates/_helpers.tpl:18-20, release istio-ingressgateway);
- Knative: activator `app: activator, role: activator`, autoscaler `app: autoscaler`
  (knative/serving knative-v1.17.2 config/core/deployments/activator.yaml:31-33,
  autoscaler.yaml:35-38); net-istio's controller `app: net-istio-controller`
  (knative-extensions/net-istio knative-v1.17.0 config/500-controller.yaml:36);
- Prometheus: `app.kubernetes.io/name: prometheus` (kube-prometheus-stack 88.5.3
  templates/prometheus/networkpolicy.yaml:26-32, the chart's own selector of its pods).
"""
import re
from pathlib import Path

import pytest

from access_fixtures import access_config, resolve, security_manifests
from components.offline.program import evaluate
from istio_semantics import Request, decide
from network_policy_semantics import Cluster, Host, NotModelled, Pod

ROOT = Path(__file__).resolve().parents[1]
THREAT_MODEL = ROOT / "docs" / "threat-model.md"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
MONITORING = {"enabled": True, "grafanaNodePort": 30300, "retention": "2d"}
SECRET = {"grafanaAdminPassword": "lab-grafana-Pa55word"}
NOW = 1780272000  # 2026-06-01
DOMAIN = "example.com"


def network_policies(evaluation) -> list[dict]:
    return [{"apiVersion": r.inputs.get("apiVersion", "networking.k8s.io/v1"),
             "kind": "NetworkPolicy", "metadata": r.inputs["metadata"], "spec": r.inputs["spec"]}
            for r in evaluation.by_type(NETWORK_POLICY)]


NAMESPACES = {
    "istio-system": {}, "knative-serving": {}, "monitoring": {}, "kube-system": {}, "default": {},
    "kserve-test": {},
    "team-a": {"kserve-cluster/project": "team-a"}, "team-b": {"kserve-cluster/project": "team-b"},
    "team-c": {"kserve-cluster/project": "team-c"},
}
MODEL_PORTS = {"http1": 8012, "user-port": 8080}  # queue-proxy and the model server
PODS = {
    "gateway": Pod("istio-ingressgateway", "istio-system",
                   {"app": "istio-ingressgateway", "istio": "ingressgateway"}, node="node-2"),
    "activator": Pod("activator", "knative-serving", {"app": "activator", "role": "activator"},
                     node="node-2"),
    "autoscaler": Pod("autoscaler", "knative-serving", {"app": "autoscaler"}),
    "knative-controller": Pod("controller", "knative-serving", {"app": "controller"}),
    "net-istio": Pod("net-istio-controller", "knative-serving", {"app": "net-istio-controller"}),
    "prometheus": Pod("prometheus", "monitoring",
                      {"app.kubernetes.io/name": "prometheus",
                       "operator.prometheus.io/name": "kube-prometheus-stack-prometheus"}),
    "grafana": Pod("grafana", "monitoring", {"app.kubernetes.io/name": "grafana"}),
    "team-a-model": Pod("tf-flower", "team-a", {"serving.kserve.io/inferenceservice": "tf-flower",
                                                "serving.knative.dev/revision": "tf-flower-predictor-00001"},
                        node="node-2", ports=MODEL_PORTS),
    "team-a-pod": Pod("a-member-pod", "team-a", {"app": "anything"}, node="node-3"),
    "team-b-model": Pod("iris", "team-b", {"serving.kserve.io/inferenceservice": "iris"},
                        node="node-2", ports=MODEL_PORTS),
    "team-b-pod": Pod("b-member-pod", "team-b", {"app": "anything"}, node="node-2"),
    "open-model": Pod("open-flower", "kserve-test", {"serving.kserve.io/inferenceservice": "open-flower"},
                      node="node-3", ports=MODEL_PORTS),
    "default-pod": Pod("some-pod", "default", {"run": "x"}),
    "coredns": Pod("coredns", "kube-system", {"k8s-app": "kube-dns"}),
    "own-node": Host("the node of the model, the activator and the gateway", "10.0.2.22",
                     node="node-2"),
    "other-node": Host("another node", "10.0.2.23", node="node-3"),
    "outside": Host("a client outside", "203.0.113.9"),
}

# The words of docs/threat-model.md's table -> the evaluator's sources and destinations.
WHO = {
    "the ingress gateway's pods": "gateway",
    "the activator": "activator",
    "Knative's autoscaler": "autoscaler",
    "Knative's controller": "knative-controller",
    "net-istio's controller": "net-istio",
    "Prometheus": "prometheus",
    "Grafana": "grafana",
    "a pod of project team-a": "team-a-pod",
    "a pod of project team-b": "team-b-pod",
    "a model of team-a": "team-a-model",
    "a model of team-b": "team-b-model",
    "a model outside projects": "open-model",
    "a pod in `default`": "default-pod",
    "CoreDNS": "coredns",
    "the pod's own node (kubelet)": "own-node",
    "another node": "other-node",
    "an address outside the cluster": "outside",
}


def allowed_paths_table() -> list[tuple[str, str, int, bool]]:
    """(source, destination, port, allowed) from the table under `## Allowed paths`."""
    text = THREAT_MODEL.read_text()
    section = text.split("## Allowed paths", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[2].isdigit():
            continue
        source, destination, port, answer = cells[0], cells[1], int(cells[2]), cells[3]
        assert answer in ("allowed", "denied"), line
        rows.append((WHO[source], WHO[destination], port, answer == "allowed"))
    return rows


@pytest.fixture(scope="module")
def serverless():
    evaluation = evaluate(access_config(monitoring=MONITORING), secret_config=SECRET)
    return evaluation, Cluster(NAMESPACES, network_policies(evaluation))


def test_the_docs_table_is_long_enough_to_mean_something():
    rows = allowed_paths_table()
    assert len(rows) >= 25
    assert {allowed for *_, allowed in rows} == {True, False}


def test_every_path_of_the_table_holds(serverless):
    _, cluster = serverless
    wrong = []
    for source, destination, port, allowed in allowed_paths_table():
        verdict = cluster.connect(PODS[source], PODS[destination], port)
        if verdict.allowed != allowed:
            wrong.append((source, destination, port, allowed, verdict.reason))
    assert not wrong, wrong


def test_the_holes_of_the_issue_are_closed(serverless):
    """Issue 16, section 2: a pod of another namespace reaches a protected model's pods
    (revision Services, pod IPs) or the activator (which routes on headers)."""
    _, cluster = serverless
    for source in ("team-b-pod", "default-pod", "open-model", "knative-controller", "grafana"):
        for port in (8012, 8080, 9091):
            assert not cluster.connect(PODS[source], PODS["team-a-model"], port).allowed, (source, port)
        assert not cluster.connect(PODS[source], PODS["activator"], 8012).allowed, source
        assert not cluster.connect(PODS[source], PODS["activator"], 8013).allowed, source


def test_raw_deployment_has_no_knative_rules_and_the_gateway_still_reaches_the_models():
    evaluation = evaluate(access_config(serving={"deploymentMode": "RawDeployment"}))
    policies = network_policies(evaluation)
    cluster = Cluster(NAMESPACES, policies)
    assert {p["metadata"]["namespace"] for p in policies} == {"team-a", "team-b", "team-c"}
    assert cluster.connect(PODS["gateway"], PODS["team-a-model"], 8080).allowed
    assert cluster.connect(PODS["team-a-pod"], PODS["team-a-model"], 8080).allowed
    for source in ("activator", "autoscaler", "prometheus", "team-b-pod"):
        assert not cluster.connect(PODS[source], PODS["team-a-model"], 8080).allowed, source


def test_without_monitoring_prometheus_is_not_let_in():
    cluster = Cluster(NAMESPACES, network_policies(evaluate(access_config())))
    assert not cluster.connect(PODS["prometheus"], PODS["team-a-model"], 9091).allowed
    assert not cluster.connect(PODS["prometheus"], PODS["activator"], 9090).allowed
    assert cluster.connect(PODS["gateway"], PODS["team-a-model"], 8012).allowed


def test_without_projects_there_is_no_network_policy():
    config = access_config()
    del config["projects"]
    config["models"] = [m for m in config["models"] if m["namespace"] == "kserve-test"]
    assert not evaluate(config).by_type(NETWORK_POLICY)


def test_models_wait_for_the_network_policies(serverless):
    from components.offline.graph import Graph
    evaluation, _ = serverless
    graph = Graph(evaluation)
    names = [r.name for r in evaluation.by_type(NETWORK_POLICY)]
    assert names
    for name in names:
        assert graph.waits_for(name, "nodes-ready"), name
        for model in ("isvc-team-a-tf-flower", "isvc-team-b-iris", "isvc-kserve-test-open-flower"):
            assert graph.waits_for(model, name), (model, name)
    assert graph.waits_for("network-policy-team-a", "namespace-team-a")
    assert graph.waits_for("network-policy-activator", "knative-serving-core")
    assert graph.waits_for("network-policy-local-gateway", "istio-ingressgateway-chart")


# ---------------------------------------------------------------- the NetworkPolicy API

def _args_fields(args_class) -> set[str]:
    """The camelCase field names of a pulumi-kubernetes input type (generated from the
    Kubernetes OpenAPI schema of networking.k8s.io/v1)."""
    import inspect
    names = [p for p in inspect.signature(args_class.__init__).parameters if p != "self"]
    return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), n) for n in names}


def check_shape(value, args_class, path="spec") -> list[str]:
    import pulumi_kubernetes as k8s
    v1, meta = k8s.networking.v1, k8s.meta.v1
    nested = {
        (v1.NetworkPolicySpecArgs, "podSelector"): meta.LabelSelectorArgs,
        (v1.NetworkPolicySpecArgs, "ingress"): [v1.NetworkPolicyIngressRuleArgs],
        (v1.NetworkPolicySpecArgs, "egress"): [v1.NetworkPolicyEgressRuleArgs],
        (v1.NetworkPolicyIngressRuleArgs, "from"): [v1.NetworkPolicyPeerArgs],
        (v1.NetworkPolicyIngressRuleArgs, "ports"): [v1.NetworkPolicyPortArgs],
        (v1.NetworkPolicyPeerArgs, "podSelector"): meta.LabelSelectorArgs,
        (v1.NetworkPolicyPeerArgs, "namespaceSelector"): meta.LabelSelectorArgs,
        (v1.NetworkPolicyPeerArgs, "ipBlock"): v1.IPBlockArgs,
        (meta.LabelSelectorArgs, "matchExpressions"): [meta.LabelSelectorRequirementArgs],
    }
    problems = []
    fields = _args_fields(args_class)
    # `from` is a Python keyword: the SDK spells it `from_`.
    fields = {"from" if f == "from_" else f for f in fields}
    for key, item in value.items():
        if key not in fields:
            problems.append(f"{path}.{key} is not a field of {args_class.__name__}")
            continue
        inner = nested.get((args_class, key))
        if isinstance(inner, list):
            for i, element in enumerate(item):
                problems += check_shape(element, inner[0], f"{path}.{key}[{i}]")
        elif inner is not None:
            problems += check_shape(item, inner, f"{path}.{key}")
    return problems


def test_every_network_policy_has_the_api_shape(serverless):
    """Field names against the networking.k8s.io/v1 types as pulumi-kubernetes generates
    them from the Kubernetes OpenAPI schema (no Kubernetes OpenAPI document is kept
    offline here, so that is the schema used); values by the API's rules."""
    import pulumi_kubernetes as k8s
    evaluation, _ = serverless
    policies = network_policies(evaluation)
    assert len(policies) == 5  # three projects, the activator, the gateway pods
    for policy in policies:
        assert policy["apiVersion"] == "networking.k8s.io/v1"
        assert not check_shape(policy["spec"], k8s.networking.v1.NetworkPolicySpecArgs), policy
        spec = policy["spec"]
        assert "podSelector" in spec and set(spec["policyTypes"]) <= {"Ingress", "Egress"}
        for rule in spec.get("ingress", []):
            for port in rule.get("ports", []):
                assert port.get("protocol", "TCP") in ("TCP", "UDP", "SCTP")
                assert 1 <= port["port"] <= port.get("endPort", port["port"]) <= 65535
            for peer in rule.get("from", []):
                for selector in (peer.get("podSelector"), peer.get("namespaceSelector")):
                    for key in (selector or {}).get("matchLabels", {}):
                        assert re.fullmatch(r"([a-z0-9.-]+/)?[A-Za-z0-9._-]+", key), key
    assert check_shape({"podSelector": {}, "ingres": []}, k8s.networking.v1.NetworkPolicySpecArgs)
    assert check_shape({"podSelector": {}, "ingress": [{"from": [{"namespaceSelectors": {}}]}]},
                       k8s.networking.v1.NetworkPolicySpecArgs)


def test_the_evaluator_can_say_no():
    policy = {"metadata": {"name": "p", "namespace": "team-a"},
              "spec": {"podSelector": {}, "policyTypes": ["Ingress"],
                       "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"x": "y"}},
                                              "podSelector": {"matchLabels": {"app": "a"}}}]}]}}
    cluster = Cluster({"team-a": {}, "one": {"x": "y"}, "two": {}}, [policy])
    model = Pod("m", "team-a")
    assert cluster.connect(Pod("a", "one", {"app": "a"}), model, 80).allowed
    assert not cluster.connect(Pod("a", "two", {"app": "a"}), model, 80).allowed  # AND, not OR
    assert not cluster.connect(Pod("b", "one", {"app": "b"}), model, 80).allowed
    assert not cluster.connect(Pod("same-ns", "team-a"), model, 80).allowed
    assert cluster.connect(Host("node", "10.0.0.1", node=model.node), model, 80).allowed
    assert cluster.connect(Pod("a", "two"), Pod("free", "two"), 80).allowed  # not isolated
    with pytest.raises(NotModelled):
        Cluster({}, [{"metadata": {"name": "p", "namespace": "x"},
                      "spec": {"podSelector": {}, "unknown": 1}}])


# ---------------------------------------------------------------- cluster-local hosts
#
# The hosts a pod can reach a model by through the local gateway (net-istio's
# knative-local-gateway, port 8081 of the same `istio: ingressgateway` pods:
# knative-extensions/net-istio knative-v1.17.0 config/203-local-gateway.yaml), from
# the upstream rules, not the program's list:
# - Knative routes a cluster-local rule by an authority *prefix* `<svc>.<ns>`
#   (net-istio knative-v1.17.0 pkg/reconciler/ingress/resources/virtual_service.go:
#   hostPrefix, makeMatch), for the hosts `<svc>.<ns>`, `<svc>.<ns>.svc` and
#   `<svc>.<ns>.svc.cluster.local` of each Knative Service and tag (`prev-<svc>`, ...);
# - KServe's top-level VirtualService matches `<isvc>.<ns>(.svc(.cluster.local)?)?(:port)?`
#   on the local gateway (kserve v0.13.1 pkg/constants/constants.go:580-590, HostRegExp;
#   reconcilers/ingress/ingress_reconciler.go:275-292), and sends every request on to the
#   local gateway with Host `<component>.<ns>.svc.cluster.local` (ingress_reconciler.go:
#   417-430): a second pass through the same gateway pods.
LOCAL_SUFFIXES = ("", ".svc", ".svc.cluster.local")


def local_hosts(isvc: str, namespace: str) -> set[str]:
    names = [isvc] + [f"{isvc}-{c}" for c in ("predictor", "transformer", "explainer")]
    names += [f"{tag}-{isvc}-predictor" for tag in ("prev", "latest")]
    return {f"{name}.{namespace}{suffix}" for name in names for suffix in LOCAL_SUFFIXES}


def local_forms(host: str) -> list[str]:
    return [host, f"{host}:80", f"{host}:8081", host.upper(), f"{host.title()}:80"]


def test_a_pod_shows_the_projects_token_on_every_local_host(serverless):
    evaluation, _ = serverless
    manifests, tokens = security_manifests(evaluation), resolve(evaluation.outputs["tokens"])
    leaks = []
    for isvc, namespace in (("tf-flower", "team-a"), ("iris", "team-b"), ("locked", "team-c"),
                            ("by-hand", "team-a")):
        others = [t for key, t in tokens.items() if not key.startswith(f"{namespace}/")]
        own = [t for key, t in tokens.items() if key.startswith(f"{namespace}/")]
        for host in sorted(local_hosts(isvc, namespace)):
            for form in local_forms(host):
                for token in [None, *others]:
                    if decide(Request(form, token), manifests, NOW).allowed:
                        leaks.append((form, token is not None))
                for token in own:
                    assert decide(Request(form, token), manifests, NOW).allowed, form
    assert not leaks, f"{len(leaks)} open, e.g. {leaks[:5]}"


def test_the_top_level_host_passes_both_hops_with_the_token_and_a_public_model_without():
    """External request -> the gateway (policy) -> KServe's route sends it on to the local
    gateway as `<isvc>-predictor.<ns>.svc.cluster.local` -> the same pods (policy again).
    The token must still be there at the second hop (RequestAuthentication's
    forwardOriginalToken; Istio 1.24.6 pilot/pkg/security/authn/policy_applier.go:165 sets
    the jwt_authn `forward` from it, false by default, which removes the header)."""
    evaluation = evaluate(access_config(monitoring=MONITORING), secret_config=SECRET)
    manifests, tokens = security_manifests(evaluation), resolve(evaluation.outputs["tokens"])

    def through(host, hop_host, token=None):
        first = decide(Request(host, token), manifests, NOW)
        if not first.allowed:
            return first
        return decide(Request(hop_host, first.upstream_token), manifests, NOW)

    assert through(f"tf-flower.team-a.{DOMAIN}", "tf-flower-predictor.team-a.svc.cluster.local",
                   tokens["team-a/ci"]).allowed
    assert not through(f"tf-flower.team-a.{DOMAIN}", "tf-flower-predictor.team-a.svc.cluster.local",
                       tokens["team-b/batch"]).allowed
    assert through(f"showcase.team-a.{DOMAIN}", "showcase-predictor.team-a.svc.cluster.local").allowed
    assert through(f"open-flower.kserve-test.{DOMAIN}",
                   "open-flower-predictor.kserve-test.svc.cluster.local").allowed
    # A public model's local hosts are open; a protected model's hosts next to it are not.
    assert decide(Request("showcase.team-a.svc.cluster.local"), manifests, NOW).allowed
    assert not decide(Request("tf-flower.team-a.svc"), manifests, NOW).allowed


def test_local_hosts_of_other_namespaces_are_not_touched(serverless):
    evaluation, _ = serverless
    manifests, tokens = security_manifests(evaluation), resolve(evaluation.outputs["tokens"])
    for host in ("open-flower.kserve-test", "open-flower-predictor.kserve-test.svc.cluster.local",
                 "x.team-ab.svc", "x.team-a-b.svc.cluster.local", "knative-local-gateway.istio-system"):
        assert decide(Request(host), manifests, NOW).allowed, host
        assert decide(Request(host, tokens["team-a/ci"]), manifests, NOW).allowed, host
