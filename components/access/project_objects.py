"""What a project is on the cluster, as data (pure): its namespace's labels, the
ResourceQuota, the LimitRange (defaults and per-container maxima) and the member Role.

The quota, each bound derived from the project's `quota` (docs/access.md, Quotas):

    requests.cpu, requests.memory        cpu, memory
    limits.cpu, limits.memory            LIMITS_FACTOR x cpu, memory
    requests.ephemeral-storage           ephemeralStorage
    requests.storage                     storage
    persistentvolumeclaims               claims (DEFAULT_CLAIMS when storage is set)
    requests.nvidia.com/gpu, pods        gpu, pods

A quota on limits.cpu or limits.memory refuses a pod with a container that sets
no limit (Kubernetes pkg/quota/v1/evaluator/core/pods.go, `validationSet`; not so
for ephemeral-storage, which is counted as zero). KServe (the pinned release) gives a model's
container requests and limits of 1 CPU and 2Gi when the model names none (its
defaulting webhook, `defaultResource`); the program's own models set both from
`resources`. The containers that others add set less: Knative's queue-proxy sets
a CPU request only. The LimitRange `default` gives those a limit, so no pod is
refused for want of one, and `max` keeps any one container within the limits quota.

The Role is what a data scientist needs in their own namespace: deploy models
(InferenceServices, ServingRuntimes) and their storage (PVCs), watch and restart
pods, read logs and events, and read (never change) the rest of the namespace.
Secrets are left out entirely: they hold storage credentials and service
account tokens. So are pods/exec, attach and port-forward, RBAC objects,
quotas and limit ranges (read only), and anything cluster-scoped.
"""
from __future__ import annotations

from components.access.config import Project, Quota
from components.quantity import smaller, times

READ = ["get", "list", "watch"]
WRITE = READ + ["create", "update", "patch", "delete"]

# Pod Security Admission: a member who can create an InferenceService can make the
# KServe controller create pods with the spec they give; `baseline` refuses the
# pod specs that reach the node (hostPath, privileged, host namespaces), which
# would otherwise turn a project member into a cluster admin.
POD_SECURITY = {"pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/warn": "baseline"}
PROJECT_LABEL = "kserve-cluster/project"

# LimitRange defaults for a container that names no resources. Small requests,
# so that sidecars without requests (Knative's queue-proxy sets only cpu) do not
# eat the quota; bounded limits. Each is clamped to the project's quota.
DEFAULT_REQUEST = {"cpu": "100m", "memory": "128Mi", "ephemeral-storage": "512Mi"}
DEFAULT_LIMIT = {"cpu": "1", "memory": "1Gi"}
# The project's containers together may be promised (limits) this many times the
# CPU and memory they may ask for (requests): a container may use more than it
# asked while the node has room, and sidecars get the default limit above their
# small request. A container above its memory limit is killed; above its CPU
# limit, slowed down.
LIMITS_FACTOR = 2
# The number of PersistentVolumeClaims of a project with a storage quota but no
# `claims`: the storage quota bounds their size, this their number.
DEFAULT_CLAIMS = 10

ROLE_RULES: list[dict] = [
    # What a data scientist deploys.
    {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices", "servingruntimes"],
     "verbs": WRITE},
    {"apiGroups": ["serving.kserve.io"],
     "resources": ["inferenceservices/status", "servingruntimes/status", "inferencegraphs",
                   "trainedmodels"], "verbs": READ},
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": WRITE},
    # Pods: watch them, read their logs, delete one to restart it; never create or exec.
    {"apiGroups": [""], "resources": ["pods"], "verbs": READ + ["delete"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": READ},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": READ},
    # Read only: the rest of what runs in the namespace (secrets left out on purpose).
    {"apiGroups": [""],
     "resources": ["configmaps", "endpoints", "services", "serviceaccounts", "resourcequotas",
                   "limitranges", "replicationcontrollers", "persistentvolumeclaims/status",
                   "pods/status"], "verbs": READ},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets",
                                          "daemonsets"], "verbs": READ},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": READ},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": READ},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": READ},
    {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": READ},
    {"apiGroups": ["serving.knative.dev"],
     "resources": ["services", "configurations", "revisions", "routes"], "verbs": READ},
    {"apiGroups": ["networking.istio.io"], "resources": ["virtualservices"], "verbs": READ},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
     "verbs": READ},
]

ROLE_NAME = "kserve-project-member"


def member_group(project: str) -> str:
    """The certificate organisation (O) that names a project of a member. Informational:
    no binding refers to it (bindings name the user), so removing a member from a
    project takes effect at once even though their certificate still says it."""
    return f"kserve-cluster:project:{project}"


def binding_name(member: str) -> str:
    return f"{ROLE_NAME}-{member}"


def namespace_labels(project: Project) -> dict[str, str]:
    return {PROJECT_LABEL: project.name, **POD_SECURITY}


def quota_hard(quota: Quota) -> dict[str, str]:
    """ResourceQuota `spec.hard`, each bound derived from the project's `quota`."""
    hard: dict[str, str] = {}
    for resource, value in (("cpu", quota.cpu), ("memory", quota.memory)):
        if value is not None:
            hard[f"requests.{resource}"] = value
            hard[f"limits.{resource}"] = times(value, LIMITS_FACTOR)
    if quota.ephemeral_storage is not None:
        hard["requests.ephemeral-storage"] = quota.ephemeral_storage
    if quota.gpu is not None:
        hard["requests.nvidia.com/gpu"] = str(quota.gpu)
    if quota.pods is not None:
        hard["pods"] = str(quota.pods)
    if quota.storage is not None:
        hard["requests.storage"] = quota.storage
    claims = quota.claims if quota.claims is not None else \
        (DEFAULT_CLAIMS if quota.storage is not None else None)
    if claims is not None:
        hard["persistentvolumeclaims"] = str(claims)
    return hard


def limit_range_spec(quota: Quota) -> dict:
    """Defaults for containers that name no resources, never above the quota (a
    default larger than the quota would refuse every such pod), and the most one
    container may set: no more than the project's limits quota (cpu, memory) or
    its ephemeral-storage quota."""
    limit = dict(DEFAULT_LIMIT)
    request = {k: v for k, v in DEFAULT_REQUEST.items() if k != "ephemeral-storage"}
    most: dict[str, str] = {}
    for resource in ("cpu", "memory"):
        bound = getattr(quota, resource)
        if bound is not None:
            limit[resource] = smaller(limit[resource], bound)
            most[resource] = times(bound, LIMITS_FACTOR)
        request[resource] = smaller(request[resource], limit[resource])
    if quota.ephemeral_storage is not None:
        # Without a default request a container that names none counts as zero
        # against requests.ephemeral-storage; `max` needs a limit on every container.
        storage = quota.ephemeral_storage
        request["ephemeral-storage"] = smaller(DEFAULT_REQUEST["ephemeral-storage"], storage)
        limit["ephemeral-storage"] = storage
        most["ephemeral-storage"] = storage
    item = {"type": "Container", "default": limit, "defaultRequest": request}
    if most:
        item["max"] = most
    return {"limits": [item]}
