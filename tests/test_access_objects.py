"""What a project is on the cluster: its Role against a table of verbs a member must
and must not have, the quota, the limit-range defaults and the namespace labels."""
import pytest

from access_fixtures import access_config
from components.access.config import Quota
from components.access.project_objects import ROLE_RULES, limit_range_spec, quota_hard
from components.quantity import parse_quantity
from components.offline.program import evaluate


def allows(rules: list[dict], verb: str, group: str, resource: str) -> bool:
    """Kubernetes RBAC for namespaced requests: some rule names the group, the
    resource (a subresource is named as `pods/log`, never covered by `pods`) and
    the verb; `*` would match anything."""
    return any((group in r["apiGroups"] or "*" in r["apiGroups"])
               and (resource in r["resources"] or "*" in r["resources"])
               and (verb in r["verbs"] or "*" in r["verbs"])
               for r in rules)


KSERVE, CORE, APPS, RBAC = "serving.kserve.io", "", "apps", "rbac.authorization.k8s.io"
MUST = [(verb, KSERVE, "inferenceservices")
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete")] + [
    (verb, KSERVE, "servingruntimes") for verb in ("get", "list", "create", "patch", "delete")] + [
    (verb, CORE, "persistentvolumeclaims") for verb in ("get", "list", "create", "delete")] + [
    ("get", CORE, "pods"), ("list", CORE, "pods"), ("watch", CORE, "pods"), ("delete", CORE, "pods"),
    ("get", CORE, "pods/log"), ("list", CORE, "events"), ("watch", "events.k8s.io", "events"),
    ("get", KSERVE, "inferenceservices/status"), ("list", KSERVE, "trainedmodels"),
    ("list", CORE, "services"), ("get", CORE, "configmaps"), ("get", CORE, "resourcequotas"),
    ("get", CORE, "limitranges"), ("list", APPS, "deployments"), ("list", APPS, "replicasets"),
    ("get", "serving.knative.dev", "revisions"), ("get", "serving.knative.dev", "services"),
    ("list", RBAC, "rolebindings"), ("get", CORE, "serviceaccounts"),
]
MUST_NOT = [
    # Secrets hold storage credentials and tokens: no access at all.
    *[(verb, CORE, "secrets") for verb in ("get", "list", "watch", "create", "update", "delete")],
    # No pods of their own making, no way into a container.
    ("create", CORE, "pods"), ("update", CORE, "pods"), ("patch", CORE, "pods"),
    ("create", CORE, "pods/exec"), ("get", CORE, "pods/exec"), ("create", CORE, "pods/attach"),
    ("create", CORE, "pods/portforward"), ("create", CORE, "pods/ephemeralcontainers"),
    ("patch", CORE, "pods/ephemeralcontainers"),
    ("create", CORE, "serviceaccounts/token"), ("create", CORE, "serviceaccounts"),
    # The project's limits and rights are the stack's to set.
    ("update", CORE, "resourcequotas"), ("patch", CORE, "resourcequotas"),
    ("delete", CORE, "resourcequotas"), ("update", CORE, "limitranges"), ("delete", CORE, "limitranges"),
    ("create", RBAC, "roles"), ("update", RBAC, "roles"), ("create", RBAC, "rolebindings"),
    ("delete", RBAC, "rolebindings"), ("bind", RBAC, "roles"), ("escalate", RBAC, "roles"),
    ("impersonate", CORE, "users"), ("impersonate", CORE, "serviceaccounts"),
    # Read only on the rest.
    ("create", APPS, "deployments"), ("delete", APPS, "deployments"), ("create", CORE, "services"),
    ("update", CORE, "configmaps"), ("create", CORE, "configmaps"),
    ("update", "serving.knative.dev", "services"), ("update", KSERVE, "inferenceservices/status"),
    ("create", "networking.istio.io", "virtualservices"),
    ("create", "security.istio.io", "authorizationpolicies"), ("delete", CORE, "events"),
    ("delete", CORE, "namespaces"), ("update", CORE, "namespaces"),
    ("deletecollection", CORE, "pods"), ("deletecollection", KSERVE, "inferenceservices"),
]


@pytest.fixture(scope="module")
def evaluation():
    return evaluate(access_config())


def role_rules(evaluation, project="team-a"):
    return evaluation.named(f"role-{project}").inputs["rules"]


@pytest.mark.parametrize("verb,group,resource", MUST)
def test_a_member_can(evaluation, verb, group, resource):
    assert allows(role_rules(evaluation), verb, group, resource)


@pytest.mark.parametrize("verb,group,resource", MUST_NOT)
def test_a_member_cannot(evaluation, verb, group, resource):
    assert not allows(role_rules(evaluation), verb, group, resource)


def test_the_role_names_everything_explicitly():
    # A wildcard would grant secrets, exec and whatever a later CRD brings.
    for rule in ROLE_RULES:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule


def test_every_project_gets_the_same_role_and_members_are_bound_by_user_name(evaluation):
    assert role_rules(evaluation, "team-a") == role_rules(evaluation, "team-b") == ROLE_RULES
    for project, members in (("team-a", ["alice", "bob"]), ("team-b", ["bob", "carol"])):
        for member in members:
            binding = evaluation.named(f"binding-{project}-{member}").inputs
            assert binding["metadata"] == {"name": f"kserve-project-member-{member}", "namespace": project}
            assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                          "name": "kserve-project-member"}
            assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                            "name": member}]
    names = {r.name for r in evaluation.by_type("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")}
    assert names == {"binding-team-a-alice", "binding-team-a-bob", "binding-team-b-bob",
                     "binding-team-b-carol", "binding-team-c-dave"}


def test_quota_keys(evaluation):
    quota = evaluation.named("quota-team-a").inputs
    assert quota["metadata"] == {"name": "kserve-project", "namespace": "team-a"}
    # team-a: {cpu: "8", memory: 32Gi, gpu: 1, pods: 20, storage: 100Gi}
    assert quota["spec"]["hard"] == {"requests.cpu": "8", "requests.memory": "32Gi",
                                     "limits.cpu": "16", "limits.memory": "64Gi",
                                     "requests.nvidia.com/gpu": "1", "pods": "20",
                                     "requests.storage": "100Gi", "persistentvolumeclaims": "10"}
    assert evaluation.named("quota-team-b").inputs["spec"]["hard"] == {
        "requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4", "limits.memory": "8Gi"}
    # A project without a quota gets none (team-c), but still its defaults.
    assert not [r for r in evaluation.registrations if r.name == "quota-team-c"]
    assert evaluation.named("limits-team-c").inputs["spec"] == limit_range_spec(Quota())


def test_every_bound_of_the_quota_under_the_mocks():
    config = access_config()
    config["projects"][0]["quota"] = {"cpu": "1500m", "memory": "6Gi", "storage": "20Gi",
                                      "ephemeralStorage": "30Gi", "claims": 4}
    evaluation = evaluate(config)
    assert evaluation.named("quota-team-a").inputs["spec"]["hard"] == {
        "requests.cpu": "1500m", "limits.cpu": "3000m",
        "requests.memory": "6Gi", "limits.memory": "12Gi",
        "requests.ephemeral-storage": "30Gi",
        "requests.storage": "20Gi", "persistentvolumeclaims": "4"}
    [item] = evaluation.named("limits-team-a").inputs["spec"]["limits"]
    assert item == {"type": "Container",
                    "default": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "30Gi"},
                    "defaultRequest": {"cpu": "100m", "memory": "128Mi",
                                       "ephemeral-storage": "512Mi"},
                    "max": {"cpu": "3000m", "memory": "12Gi", "ephemeral-storage": "30Gi"}}


def test_gpu_and_pods_quotas_are_written_as_quantities():
    assert quota_hard(Quota(gpu=0, pods=3)) == {"requests.nvidia.com/gpu": "0", "pods": "3"}
    assert quota_hard(Quota()) == {}


def test_claims_are_counted_when_given_or_when_storage_is_bounded():
    assert quota_hard(Quota(claims=0)) == {"persistentvolumeclaims": "0"}
    assert quota_hard(Quota(storage="1Gi"))["persistentvolumeclaims"] == "10"
    assert quota_hard(Quota(storage="1Gi", claims=2))["persistentvolumeclaims"] == "2"


@pytest.mark.parametrize("quota,limit,request_", [
    (Quota(), {"cpu": "1", "memory": "1Gi"}, {"cpu": "100m", "memory": "128Mi"}),
    (Quota(cpu="8", memory="32Gi"), {"cpu": "1", "memory": "1Gi"}, {"cpu": "100m", "memory": "128Mi"}),
    (Quota(cpu="500m", memory="512Mi"), {"cpu": "500m", "memory": "512Mi"}, {"cpu": "100m", "memory": "128Mi"}),
    (Quota(cpu="50m", memory="64Mi"), {"cpu": "50m", "memory": "64Mi"}, {"cpu": "50m", "memory": "64Mi"}),
    (Quota(ephemeral_storage="256Mi"), {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "256Mi"},
     {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "256Mi"}),
])
def test_limit_range_defaults_admit_a_pod_without_requests_under_the_quota(quota, limit, request_):
    [item] = limit_range_spec(quota)["limits"]
    assert (item["type"], item["default"], item["defaultRequest"]) == ("Container", limit, request_)
    hard = quota_hard(quota)
    for resource in limit:
        assert parse_quantity(request_[resource]) <= parse_quantity(limit[resource])
        # A defaulted container fits the quota on its own, and the maximum.
        if f"requests.{resource}" in hard:
            assert parse_quantity(request_[resource]) <= parse_quantity(hard[f"requests.{resource}"])
        if f"limits.{resource}" in hard:
            assert parse_quantity(limit[resource]) <= parse_quantity(hard[f"limits.{resource}"])
        if resource in item.get("max", {}):
            assert parse_quantity(limit[resource]) <= parse_quantity(item["max"][resource])


def test_no_single_container_above_the_projects_limits_quota():
    quota = Quota(cpu="4", memory="8Gi", ephemeral_storage="20Gi", gpu=1)
    [item] = limit_range_spec(quota)["limits"]
    hard = quota_hard(quota)
    assert item["max"] == {"cpu": hard["limits.cpu"], "memory": hard["limits.memory"],
                           "ephemeral-storage": hard["requests.ephemeral-storage"]}
    assert "max" not in limit_range_spec(Quota(pods=3))["limits"][0]  # nothing to bound by


def test_kserves_default_model_container_and_queue_proxy_fit_a_two_cpu_project():
    """A model that names no resources gets 1 CPU and 2Gi as request and limit from
    KServe v0.13.1's defaulting webhook; Knative's queue-proxy asks 25m CPU and sets no
    limit; KServe's storage initializer (inferenceservice-config, v0.13.1 chart) asks
    100m/100Mi with limits 1/1Gi. Under a quota of 2 CPU and 4Gi the pod is admitted:
    every container has limits (the LimitRange default), none is above `max`, and the
    pod's requests and limits fit the quota."""
    quota = Quota(cpu="2", memory="4Gi")
    [item] = limit_range_spec(quota)["limits"]
    hard = quota_hard(quota)

    def defaulted(resources):  # what the LimitRanger admission plugin does to a container
        limits = {**item["default"], **resources.get("limits", {})}
        requests = {**{k: limits[k] if k in resources.get("limits", {}) else v
                       for k, v in item["defaultRequest"].items()},
                    **resources.get("requests", {})}
        return requests, limits

    model = defaulted({"requests": {"cpu": "1", "memory": "2Gi"},
                       "limits": {"cpu": "1", "memory": "2Gi"}})
    queue_proxy = defaulted({"requests": {"cpu": "25m"}})
    initializer = defaulted({"requests": {"cpu": "100m", "memory": "100Mi"},
                             "limits": {"cpu": "1", "memory": "1Gi"}})
    for requests, limits in (model, queue_proxy, initializer):
        for resource in ("cpu", "memory"):
            assert parse_quantity(limits[resource]) <= parse_quantity(item["max"][resource])
    for kind, index in (("requests", 0), ("limits", 1)):
        for resource in ("cpu", "memory"):
            # A pod's effective amount: the larger of its containers' sum and any init container.
            pod = max(sum(parse_quantity(c[index][resource]) for c in (model, queue_proxy)),
                      parse_quantity(initializer[index][resource]))
            assert pod <= parse_quantity(hard[f"{kind}.{resource}"]), (kind, resource)


def test_project_namespaces_enforce_baseline_pod_security(evaluation):
    labels = evaluation.named("namespace-team-a").inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["kserve-cluster/project"] == "team-a"
    # Namespaces outside projects are left as they were.
    assert "labels" not in evaluation.named("namespace-kserve-test").inputs["metadata"]
