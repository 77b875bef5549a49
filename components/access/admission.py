"""What a member's models may carry, as ValidatingAdmissionPolicies (pure data).

The member Role leaves Secrets out, but a member who may create an
InferenceService or a ServingRuntime chooses the pod spec that KServe's
controller turns into pods: a container that takes a Secret into its
environment or a volume, or runs as another service account, then prints it to
its log, which the member may read. These policies refuse, for members only:

- any reference to a Secret in the spec: env `valueFrom.secretKeyRef`,
  `envFrom[].secretRef`, a `secret` volume, a projected volume's `secret`
  source, a volume type that names a Secret for its mount (csi, cephfs, rbd,
  iscsi, flexVolume, azureFile, scaleIO, storageos, cinder), `imagePullSecrets`;
- KServe's own ways of naming a Secret for its storage initializer: the
  `storage` field of a model (it reads the namespace's `storage-config` Secret)
  and the annotations that name a storage Secret;
- a service account other than `default` and the project's storage-secret
  accounts (components/storage/secrets.py; KServe hands the Secrets they list
  to the storage initializer, never to the model's own container);
- tolerating the control-plane taint (or every taint, an empty key), and
  `nodeName`, which skips the scheduler and with it the taint.

Who is a member: every request to a project namespace (the binding selects
them by label) except those of the admins (kubeadm's `kubeadm:cluster-admins`,
and `system:masters`) and of Kubernetes' own identities (names under
`system:`: nodes, controllers, service accounts of other namespaces, KServe's
controller among them). A project's own service accounts stay subject to the
policies. Member names cannot start with `system:` (components/access/config.py
allows no colon). Nothing here depends on the certificate's organisations, which
outlive a member's removal.

Kinds: the member Role lets members create InferenceServices and
ServingRuntimes (and PersistentVolumeClaims, whose spec names no Secret); no
pods, deployments or jobs. InferenceGraph and TrainedModel are read only for
members, and their specs at the pinned KServe have no field that names a
Secret, a service account, a toleration or a node (tests/test_access_admission.py
keeps that list), so no policy matches them.

The expressions use standard CEL only (has, all, exists, in, startsWith): the
Kubernetes API server evaluates them against the object as sent, after the
mutating webhooks; the tests evaluate the same text with a CEL library.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from components.access.project_objects import PROJECT_LABEL

API_VERSION = "admissionregistration.k8s.io/v1"
KSERVE_GROUP = "serving.kserve.io"
ISVC_POLICY = "kserve-cluster-member-inferenceservices"
RUNTIME_POLICY = "kserve-cluster-member-servingruntimes"

ADMIN_GROUPS = ("system:masters", "kubeadm:cluster-admins")
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
DEFAULT_ACCOUNT = "default"
# KServe's credential builder takes the storage Secret's name from this pod
# annotation when present (the chart's `storageSecretNameAnnotation`, and the
# value KServe's own config/ manifests use).
STORAGE_SECRET_ANNOTATIONS = ("serving.kserve.io/secretName",
                              "serving.kserve.io/storageSecretName")
# Volume types whose source names a Secret for the kubelet or a driver, and the field.
SECRET_VOLUME_FIELDS = (("secret", None), ("csi", "nodePublishSecretRef"),
                        ("cephfs", "secretRef"), ("rbd", "secretRef"), ("iscsi", "secretRef"),
                        ("flexVolume", "secretRef"), ("azureFile", None),
                        ("scaleIO", "secretRef"), ("storageos", "secretRef"),
                        ("cinder", "secretRef"))
# An InferenceService's components, and where each holds a container: `model`,
# the framework shorthands (each a container), `containers`, `initContainers`.
PREDICTOR_SINGLE_CONTAINERS = ("model", "sklearn", "xgboost", "tensorflow", "pytorch", "triton",
                               "onnx", "huggingface", "pmml", "lightgbm", "paddle")
COMPONENT_SINGLE_CONTAINERS = {"predictor": PREDICTOR_SINGLE_CONTAINERS,
                               "transformer": (), "explainer": ("art",)}
CONTAINER_LISTS = ("containers", "initContainers")


def _q(text: str) -> str:
    """A CEL string literal (our names hold no quote or backslash)."""
    assert "'" not in text and "\\" not in text
    return f"'{text}'"


def _list(items: Sequence[str]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def _optional(path: str, test: str) -> str:
    """`test` of the field at `path` (`x` in it), true when the field is absent."""
    return f"(!has({path}) || {test.replace('@', path)})"


def _all_items(path: str, var: str, test: str) -> str:
    return _optional(path, f"@.all({var}, {test})")


def _container_clean(c: str) -> str:
    env = _all_items(f"{c}.env", "e", "!has(e.valueFrom) || !has(e.valueFrom.secretKeyRef)")
    env_from = _all_items(f"{c}.envFrom", "f", "!has(f.secretRef)")
    return f"({env} && {env_from})"


def _volume_clean(v: str) -> str:
    tests = []
    for kind, field in SECRET_VOLUME_FIELDS:
        tests.append(f"!has({v}.{kind})" if field is None
                     else f"(!has({v}.{kind}) || !has({v}.{kind}.{field}))")
    tests.append(f"(!has({v}.projected) || !has({v}.projected.sources) || "
                 f"{v}.projected.sources.all(s, !has(s.secret)))")
    return "(" + " && ".join(tests) + ")"


def _annotations_clean(path: str) -> str:
    return _optional(path, "!(" + " || ".join(f"{_q(a)} in @" for a in STORAGE_SECRET_ANNOTATIONS)
                     + ")")


def _pod_spec_checks(p: str, single: Sequence[str], lists: Sequence[str]) -> dict[str, str]:
    """The checks of one pod-like spec at path `p` (without the guard that it exists)."""
    containers = [_optional(f"{p}.{name}", _container_clean("@")) for name in single] + \
                 [_all_items(f"{p}.{name}", "c", _container_clean("c")) for name in lists]
    return {
        "env": " && ".join(containers),
        "volumes": _all_items(f"{p}.volumes", "v", _volume_clean("v")),
        "pullSecrets": f"(!has({p}.imagePullSecrets) || size({p}.imagePullSecrets) == 0)",
        "accounts": " && ".join(
            _optional(f"{p}.{field}", "(@ == '' || @ in variables.accounts)")
            for field in ("serviceAccountName", "serviceAccount")),
        "controlPlane": (
            _all_items(f"{p}.tolerations", "t",
                       f"has(t.key) && t.key != '' && t.key != {_q(CONTROL_PLANE_TAINT)}")
            + " && " + _optional(f"{p}.nodeName", "@ == ''")),
    }


MESSAGES = {
    "env": "members may not give a container a Secret (env valueFrom.secretKeyRef, "
           "envFrom secretRef): a model's log would show it",
    "volumes": "members may not mount a Secret (a secret volume, a projected volume's secret "
               "source, or a volume type that names a Secret)",
    "pullSecrets": "members may not name imagePullSecrets: an admin attaches a pull secret to "
                   "the project's service account instead",
    "accounts": "members may run models only as the 'default' service account or one of the "
                "project's storage-secret accounts",
    "controlPlane": "members may not place pods on the control plane (a toleration of "
                    f"{CONTROL_PLANE_TAINT} or of every taint, or nodeName)",
    "storage": "members may not name a storage Secret (a model's `storage` field, which reads "
               "the namespace's storage-config Secret, or a storage secret annotation): use "
               "storageUri with the project's storage-secret account",
}


def _combine(per_component: list[tuple[str, dict[str, str]]]) -> dict[str, str]:
    """One expression per check, over every component present."""
    combined: dict[str, str] = {}
    for guard, checks in per_component:
        for name, expression in checks.items():
            part = f"(!has({guard}) || ({expression}))" if guard else f"({expression})"
            combined[name] = f"{combined[name]} && {part}" if name in combined else part
    return combined


def inference_service_checks() -> dict[str, str]:
    parts: list[tuple[str, dict[str, str]]] = []
    for component, single in COMPONENT_SINGLE_CONTAINERS.items():
        p = f"object.spec.{component}"
        checks = _pod_spec_checks(p, single, CONTAINER_LISTS)
        checks["storage"] = _annotations_clean(f"{p}.annotations")
        if "model" in single:
            checks["storage"] += f" && (!has({p}.model) || !has({p}.model.storage))"
        parts.append((p, checks))
    parts.append(("", {"storage": _annotations_clean("object.metadata.annotations")}))
    return _combine(parts)


def serving_runtime_checks() -> dict[str, str]:
    p = "object.spec"
    checks = _pod_spec_checks(p, (), ("containers",))
    del checks["accounts"]  # a ServingRuntime names no service account
    checks["controlPlane"] = _all_items(
        f"{p}.tolerations", "t", f"has(t.key) && t.key != '' && t.key != {_q(CONTROL_PLANE_TAINT)}")
    checks["env"] += " && " + _optional(f"{p}.builtInAdapter", _all_items(
        "@.env", "e", "!has(e.valueFrom) || !has(e.valueFrom.secretKeyRef)"))
    checks["storage"] = (_annotations_clean(f"{p}.annotations") + " && "
                         + _annotations_clean("object.metadata.annotations"))
    return _combine([("", checks)])


def match_conditions() -> list[dict]:
    """Who the policies apply to: not an admin, not one of Kubernetes' own identities
    (except this namespace's service accounts, which a member's pod runs as)."""
    return [
        {"name": "not-an-admin",
         "expression": f"!request.userInfo.groups.exists(g, g in {_list(ADMIN_GROUPS)})"},
        {"name": "not-a-cluster-component",
         "expression": "!request.userInfo.username.startsWith('system:') || "
                       "request.userInfo.username.startsWith("
                       "'system:serviceaccount:' + request.namespace + ':')"},
    ]


def accounts_variable(storage_accounts: Mapping[str, Sequence[str]]) -> str:
    """The service accounts a model of the request's namespace may run as."""
    entries = ", ".join(f"{_q(ns)}: {_list([DEFAULT_ACCOUNT, *sorted(set(names))])}"
                        for ns, names in sorted(storage_accounts.items()))
    return (f"request.namespace in {{{entries}}} ? {{{entries}}}[request.namespace] : "
            f"{_list([DEFAULT_ACCOUNT])}")


def _policy(name: str, resource: str, checks: dict[str, str],
            variables: list[dict]) -> dict:
    spec: dict = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{
            "apiGroups": [KSERVE_GROUP], "apiVersions": ["*"],
            "operations": ["CREATE", "UPDATE"], "resources": [resource]}]},
        "matchConditions": match_conditions(),
        "validations": [{"expression": checks[key], "message": MESSAGES[key],
                         "reason": "Forbidden"} for key in MESSAGES if key in checks],
    }
    if variables:
        spec["variables"] = variables
    return {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name}, "spec": spec}


def policies(storage_accounts: Mapping[str, Sequence[str]]) -> list[dict]:
    """The two policies; `storage_accounts` maps a project namespace to the names of
    its storage-secret service accounts."""
    return [
        _policy(ISVC_POLICY, "inferenceservices", inference_service_checks(),
                [{"name": "accounts", "expression": accounts_variable(storage_accounts)}]),
        _policy(RUNTIME_POLICY, "servingruntimes", serving_runtime_checks(), []),
    ]


def storage_accounts(secrets: Sequence) -> dict[str, list[str]]:
    """By namespace, the service accounts of the stack's `storageSecrets` (each is
    named as its Secret, components/storage/secrets.py)."""
    found: dict[str, list[str]] = {}
    for secret in secrets:
        found.setdefault(secret.namespace, []).append(secret.name)
    return found


def binding(policy_name: str) -> dict:
    """Every project namespace (by its label), refusing what a validation refuses."""
    return {"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": policy_name},
            "spec": {"policyName": policy_name, "validationActions": ["Deny"],
                     "matchResources": {"namespaceSelector": {"matchExpressions": [
                         {"key": PROJECT_LABEL, "operator": "Exists"}]}}}}
