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
    assert quota["spec"]["hard"] == {"requests.cpu": "8", "requests.memory": "32Gi",
                                     "requests.nvidia.com/gpu": "1", "pods": "20",
                                     "requests.storage": "100Gi"}
    # A project without a quota gets none (team-c), but still its defaults.
    assert not [r for r in evaluation.registrations if r.name == "quota-team-c"]
    assert evaluation.named("limits-team-c").inputs["spec"] == limit_range_spec(Quota())


def test_gpu_and_pods_quotas_are_written_as_quantities():
    assert quota_hard(Quota(gpu=0, pods=3)) == {"requests.nvidia.com/gpu": "0", "pods": "3"}
    assert quota_hard(Quota()) == {}


@pytest.mark.parametrize("quota,limit,request_", [
    (Quota(), {"cpu": "1", "memory": "1Gi"}, {"cpu": "100m", "memory": "128Mi"}),
    (Quota(cpu="8", memory="32Gi"), {"cpu": "1", "memory": "1Gi"}, {"cpu": "100m", "memory": "128Mi"}),
    (Quota(cpu="500m", memory="512Mi"), {"cpu": "500m", "memory": "512Mi"}, {"cpu": "100m", "memory": "128Mi"}),
    (Quota(cpu="50m", memory="64Mi"), {"cpu": "50m", "memory": "64Mi"}, {"cpu": "50m", "memory": "64Mi"}),
])
def test_limit_range_defaults_admit_a_pod_without_requests_under_the_quota(quota, limit, request_):
    [item] = limit_range_spec(quota)["limits"]
    assert item == {"type": "Container", "default": limit, "defaultRequest": request_}
    for resource in ("cpu", "memory"):
        assert parse_quantity(request_[resource]) <= parse_quantity(limit[resource])
        bound = getattr(quota, resource)
        if bound is not None:  # a defaulted container fits the quota on its own
            assert parse_quantity(request_[resource]) <= parse_quantity(bound)


def test_project_namespaces_enforce_baseline_pod_security(evaluation):
    labels = evaluation.named("namespace-team-a").inputs["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
    assert labels["kserve-cluster/project"] == "team-a"
    # Namespaces outside projects are left as they were.
    assert "labels" not in evaluation.named("namespace-kserve-test").inputs["metadata"]
