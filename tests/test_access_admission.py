"""What a member's models may carry: the ValidatingAdmissionPolicies of
components/access/admission.py, their CEL evaluated by a CEL library (cel-python),
against a table of attempts. Each attempt is refused for a member and allowed for
the admin and for KServe's controller; a member's ordinary model passes.

How the API server applies a policy, as modelled here (Kubernetes 1.31,
"Validating Admission Policy", https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/):
the policy's matchConstraints (resource, operation) and the binding's
matchResources (namespace labels) select the request; then every matchCondition
must be true, else the policy does not apply; then `variables` are computed and
every validation must be true, else the binding's `Deny` refuses the request
with the validation's message. `object` is the object as sent, after the
mutating webhooks; `request.userInfo` who sent it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import celpy
import pytest
import yaml

from components import upstream, versions
from components.access import admission
from components.access.project_objects import PROJECT_LABEL
from components.serving.config import Model, Runtime, ModelFormat
from components.serving.models import inference_service_spec, runtime_spec
from upstream_needs import need

NS = "team-a"
STORAGE_ACCOUNTS = {NS: ["minio"], "team-b": ["other-store"]}
MEMBER = {"username": "alice", "groups": ["kserve-cluster:project:team-a", "system:authenticated"]}
# A member whose certificate names no project (issued before they joined one).
MEMBER_OLD_CERT = {"username": "bob", "groups": ["system:authenticated"]}
# A pod of the project running as its default account, with its mounted token.
PROJECT_ACCOUNT = {"username": f"system:serviceaccount:{NS}:default",
                   "groups": ["system:serviceaccounts", f"system:serviceaccounts:{NS}",
                              "system:authenticated"]}
ADMIN = {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]}
SUPER_ADMIN = {"username": "kubernetes-super-admin", "groups": ["system:masters", "system:authenticated"]}
KSERVE_CONTROLLER = {"username": "system:serviceaccount:kserve:kserve-controller-manager",
                     "groups": ["system:serviceaccounts", "system:serviceaccounts:kserve",
                                "system:authenticated"]}
GARBAGE_COLLECTOR = {"username": "system:serviceaccount:kube-system:generic-garbage-collector",
                     "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                                "system:authenticated"]}

ENV = celpy.Environment()


@lru_cache(maxsize=None)
def program(expression: str):
    return ENV.program(ENV.compile(expression))


def cel(expression: str, activation: dict):
    return program(expression).evaluate(
        {name: celpy.json_to_cel(value) for name, value in activation.items()})


def holds(expression: str, activation: dict) -> bool:
    """A boolean expression's value; an evaluation error fails the test (on the API
    server it would be failurePolicy's: Fail, the request refused)."""
    result = cel(expression, activation)
    assert isinstance(result, celpy.celtypes.BoolType), (expression[:200], result)
    return bool(result)


def admit(policies: list[dict], bindings: list[dict], resource: str, operation: str,
          obj: dict, user: dict, namespace: str = NS,
          namespace_labels: dict | None = None) -> list[str]:
    """The messages of the validations that refuse the request; [] = admitted."""
    labels = {PROJECT_LABEL: namespace} if namespace_labels is None else namespace_labels
    request = {"namespace": namespace, "operation": operation, "userInfo": user,
               "resource": {"group": admission.KSERVE_GROUP, "resource": resource}}
    refused: list[str] = []
    for policy in policies:
        spec = policy["spec"]
        if not any(resource in rule["resources"] and operation in rule["operations"]
                   and admission.KSERVE_GROUP in rule["apiGroups"]
                   for rule in spec["matchConstraints"]["resourceRules"]):
            continue
        bound = [b for b in bindings if b["spec"]["policyName"] == policy["metadata"]["name"]]
        for binding in bound:
            if not selects(binding["spec"]["matchResources"]["namespaceSelector"], labels):
                continue
            activation = {"object": obj, "request": request}
            if not all(holds(c["expression"], activation) for c in spec.get("matchConditions", [])):
                continue
            values = {}
            for variable in spec.get("variables", []):
                values[variable["name"]] = cel(variable["expression"],
                                               {**activation, "variables": values})
            for validation in spec["validations"]:
                if not holds(validation["expression"], {**activation, "variables": values}):
                    assert "Deny" in binding["spec"]["validationActions"]
                    refused.append(validation["message"])
    return refused


def selects(selector: dict, labels: dict) -> bool:
    """A label selector of matchExpressions with Exists (the only operator used)."""
    assert set(selector) == {"matchExpressions"}
    return all(e["operator"] == "Exists" and e["key"] in labels for e in selector["matchExpressions"])


POLICIES = admission.policies(STORAGE_ACCOUNTS)
BINDINGS = [admission.binding(p["metadata"]["name"]) for p in POLICIES]


def isvc(spec: dict, annotations: dict | None = None) -> dict:
    meta = {"name": "m", "namespace": NS}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": meta, "spec": spec}


def runtime(spec: dict, annotations: dict | None = None) -> dict:
    meta = {"name": "r", "namespace": NS}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": "serving.kserve.io/v1alpha1", "kind": "ServingRuntime",
            "metadata": meta, "spec": spec}


MODEL = {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://models/iris"}
SECRET_ENV = {"name": "X", "valueFrom": {"secretKeyRef": {"name": "minio", "key": "AWS_SECRET_ACCESS_KEY"}}}
SECRET_ENV_FROM = {"secretRef": {"name": "minio"}}
CONTAINER = {"name": "kserve-container", "image": "example.org/server:1"}


def predictor(**fields) -> dict:
    return isvc({"predictor": {"model": dict(MODEL), **fields}})


def with_model(**fields) -> dict:
    return isvc({"predictor": {"model": {**MODEL, **fields}}})


RUNTIME_BASE = {"supportedModelFormats": [{"name": "sklearn"}], "containers": [dict(CONTAINER)]}

# Each way a member could hand a model a Secret, another account or the control
# plane: (resource, object).
ATTEMPTS = {
    "isvc model env secretKeyRef": ("inferenceservices", with_model(env=[SECRET_ENV])),
    "isvc model envFrom secretRef": ("inferenceservices", with_model(envFrom=[SECRET_ENV_FROM])),
    "isvc framework shorthand env": ("inferenceservices", isvc({"predictor": {
        "sklearn": {"storageUri": "s3://models/iris", "env": [SECRET_ENV]}}})),
    "isvc containers env": ("inferenceservices", isvc({"predictor": {
        "containers": [{**CONTAINER, "env": [{"name": "A", "value": "1"}, SECRET_ENV]}]}})),
    "isvc initContainers envFrom": ("inferenceservices", predictor(
        initContainers=[{**CONTAINER, "name": "init", "envFrom": [SECRET_ENV_FROM]}])),
    "isvc transformer env": ("inferenceservices", isvc({
        "predictor": {"model": dict(MODEL)},
        "transformer": {"containers": [{**CONTAINER, "env": [SECRET_ENV]}]}})),
    "isvc explainer art env": ("inferenceservices", isvc({
        "predictor": {"model": dict(MODEL)},
        "explainer": {"art": {"type": "SquareAttack", "env": [SECRET_ENV]}}})),
    "isvc secret volume": ("inferenceservices", predictor(
        volumes=[{"name": "s", "secret": {"secretName": "minio"}}])),
    "isvc projected secret source": ("inferenceservices", predictor(volumes=[
        {"name": "p", "projected": {"sources": [{"configMap": {"name": "c"}},
                                                {"secret": {"name": "minio"}}]}}])),
    "isvc csi volume with a secret": ("inferenceservices", predictor(volumes=[
        {"name": "c", "csi": {"driver": "x", "nodePublishSecretRef": {"name": "minio"}}}])),
    "isvc azureFile volume": ("inferenceservices", predictor(volumes=[
        {"name": "a", "azureFile": {"secretName": "minio", "shareName": "s"}}])),
    "isvc transformer secret volume": ("inferenceservices", isvc({
        "predictor": {"model": dict(MODEL)},
        "transformer": {"containers": [dict(CONTAINER)],
                        "volumes": [{"name": "s", "secret": {"secretName": "minio"}}]}})),
    "isvc imagePullSecrets": ("inferenceservices", predictor(imagePullSecrets=[{"name": "minio"}])),
    "isvc another service account": ("inferenceservices", predictor(serviceAccountName="deployer")),
    "isvc another project's storage account": ("inferenceservices",
                                               predictor(serviceAccountName="other-store")),
    "isvc deprecated serviceAccount field": ("inferenceservices", predictor(serviceAccount="deployer")),
    "isvc explainer service account": ("inferenceservices", isvc({
        "predictor": {"model": dict(MODEL)},
        "explainer": {"containers": [dict(CONTAINER)], "serviceAccountName": "deployer"}})),
    "isvc control-plane toleration": ("inferenceservices", predictor(tolerations=[
        {"key": admission.CONTROL_PLANE_TAINT, "operator": "Exists", "effect": "NoSchedule"}])),
    "isvc toleration of every taint": ("inferenceservices", predictor(
        tolerations=[{"operator": "Exists"}])),
    "isvc transformer toleration": ("inferenceservices", isvc({
        "predictor": {"model": dict(MODEL)},
        "transformer": {"containers": [dict(CONTAINER)],
                        "tolerations": [{"key": admission.CONTROL_PLANE_TAINT, "operator": "Exists"}]}})),
    "isvc nodeName": ("inferenceservices", predictor(nodeName="cp-1")),
    "isvc model storage spec": ("inferenceservices", with_model(storage={"key": "minio", "path": "m"})),
    "isvc storage secret annotation": ("inferenceservices", isvc(
        {"predictor": {"model": dict(MODEL)}},
        annotations={"serving.kserve.io/secretName": "minio"})),
    "isvc component storage secret annotation": ("inferenceservices", predictor(
        annotations={"serving.kserve.io/storageSecretName": "minio"})),
    "runtime container env": ("servingruntimes", runtime(
        {**RUNTIME_BASE, "containers": [{**CONTAINER, "env": [SECRET_ENV]}]})),
    "runtime container envFrom": ("servingruntimes", runtime(
        {**RUNTIME_BASE, "containers": [{**CONTAINER, "envFrom": [SECRET_ENV_FROM]}]})),
    "runtime builtInAdapter env": ("servingruntimes", runtime(
        {**RUNTIME_BASE, "builtInAdapter": {"serverType": "triton", "env": [SECRET_ENV]}})),
    "runtime secret volume": ("servingruntimes", runtime(
        {**RUNTIME_BASE, "volumes": [{"name": "s", "secret": {"secretName": "minio"}}]})),
    "runtime projected secret": ("servingruntimes", runtime(
        {**RUNTIME_BASE, "volumes": [{"name": "p", "projected": {"sources": [
            {"secret": {"name": "minio"}}]}}]})),
    "runtime imagePullSecrets": ("servingruntimes", runtime(
        {**RUNTIME_BASE, "imagePullSecrets": [{"name": "minio"}]})),
    "runtime control-plane toleration": ("servingruntimes", runtime(
        {**RUNTIME_BASE, "tolerations": [{"key": admission.CONTROL_PLANE_TAINT,
                                          "operator": "Exists"}]})),
    "runtime storage secret annotation": ("servingruntimes", runtime(
        RUNTIME_BASE, annotations={"serving.kserve.io/secretName": "minio"})),
}


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
@pytest.mark.parametrize("operation", ["CREATE", "UPDATE"])
@pytest.mark.parametrize("user", [MEMBER, MEMBER_OLD_CERT, PROJECT_ACCOUNT],
                         ids=["member", "member-old-cert", "project-account"])
def test_a_member_is_refused(name, operation, user):
    resource, obj = ATTEMPTS[name]
    refused = admit(POLICIES, BINDINGS, resource, operation, obj, user)
    assert len(refused) == 1, refused


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
@pytest.mark.parametrize("user", [ADMIN, SUPER_ADMIN, KSERVE_CONTROLLER, GARBAGE_COLLECTOR],
                         ids=["admin", "super-admin", "kserve-controller", "garbage-collector"])
def test_the_admin_and_the_controllers_are_not(name, user):
    resource, obj = ATTEMPTS[name]
    for operation in ("CREATE", "UPDATE"):
        assert admit(POLICIES, BINDINGS, resource, operation, obj, user) == []


@pytest.mark.parametrize("name", sorted(ATTEMPTS))
def test_outside_project_namespaces_nothing_is_checked(name):
    resource, obj = ATTEMPTS[name]
    assert admit(POLICIES, BINDINGS, resource, "CREATE", obj, MEMBER,
                 namespace="kserve-test", namespace_labels={}) == []


def test_deleting_is_never_checked():
    resource, obj = ATTEMPTS["isvc model env secretKeyRef"]
    assert admit(POLICIES, BINDINGS, resource, "DELETE", obj, MEMBER) == []


def test_each_attempt_names_the_right_rule():
    message = {key: admission.MESSAGES[key] for key in admission.MESSAGES}
    expected = {"env": message["env"], "envFrom": message["env"], "shorthand": message["env"],
                "volume": message["volumes"], "projected": message["volumes"],
                "imagePullSecrets": message["pullSecrets"], "account": message["accounts"],
                "toleration": message["controlPlane"], "nodeName": message["controlPlane"],
                "storage": message["storage"]}
    for name, (resource, obj) in ATTEMPTS.items():
        [refused] = admit(POLICIES, BINDINGS, resource, "CREATE", obj, MEMBER)
        hits = [m for word, m in expected.items() if word.lower() in name.lower()]
        assert refused in hits, (name, refused)


# ---------------------------------------------------------------- what stays allowed

def program_model(**changes) -> dict:
    model = Model(name="iris", namespace=NS, format="sklearn", storage_uri="s3://models/iris",
                  **changes)
    return isvc(inference_service_spec(model, rollout=True))


ORDINARY = {
    "the program's model": ("inferenceservices", program_model()),
    "the program's model with the project's storage account": (
        "inferenceservices", program_model(storage_secret="minio")),
    "the default account by name": ("inferenceservices", predictor(serviceAccountName="default")),
    "an empty service account name": ("inferenceservices", predictor(serviceAccountName="")),
    "plain env, configMap env and a configMap volume": ("inferenceservices", isvc({"predictor": {
        "model": {**MODEL, "env": [{"name": "A", "value": "1"},
                                   {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                                   {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                  "envFrom": [{"configMapRef": {"name": "c"}}]},
        "volumes": [{"name": "c", "configMap": {"name": "c"}}, {"name": "e", "emptyDir": {}},
                    {"name": "p", "projected": {"sources": [{"configMap": {"name": "c"}},
                                                            {"downwardAPI": {"items": []}}]}},
                    {"name": "d", "persistentVolumeClaim": {"claimName": "models"}}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "annotations": {"serving.kserve.io/deploymentMode": "Serverless"}}},
        annotations={"serving.kserve.io/enable-tag-routing": "true"})),
    "a transformer and an explainer without secrets": ("inferenceservices", isvc({
        "predictor": {"model": dict(MODEL)},
        "transformer": {"containers": [{**CONTAINER, "env": [{"name": "A", "value": "1"}]}]},
        "explainer": {"art": {"type": "SquareAttack"}}})),
    "the program's runtime": ("servingruntimes", runtime(runtime_spec(Runtime(
        name="r", namespace=NS, image="example.org/server:1", args=("--port=8080",),
        env=(("A", "1"),), model_formats=(ModelFormat(name="sklearn"),))))),
    "a runtime with a configMap volume and a GPU toleration": ("servingruntimes", runtime({
        **RUNTIME_BASE, "volumes": [{"name": "c", "configMap": {"name": "c"}}],
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]})),
}


@pytest.mark.parametrize("name", sorted(ORDINARY))
def test_a_members_ordinary_model_is_admitted(name):
    resource, obj = ORDINARY[name]
    for operation in ("CREATE", "UPDATE"):
        assert admit(POLICIES, BINDINGS, resource, operation, obj, MEMBER) == []


def test_the_program_model_uses_the_storage_account_checked_here():
    assert program_model(storage_secret="minio")["spec"]["predictor"]["serviceAccountName"] == "minio"


def test_storage_accounts_come_from_the_stacks_storage_secrets():
    class Secret:
        def __init__(self, namespace, name):
            self.namespace, self.name = namespace, name
    assert admission.storage_accounts([Secret("team-a", "minio"), Secret("team-a", "ceph"),
                                       Secret("kserve-test", "x")]) == {
        "team-a": ["minio", "ceph"], "kserve-test": ["x"]}


def test_a_namespace_without_storage_secrets_allows_only_default():
    obj = predictor(serviceAccountName="minio")
    assert admit(POLICIES, BINDINGS, "inferenceservices", "CREATE", obj, MEMBER,
                 namespace="team-c") == [admission.MESSAGES["accounts"]]
    assert admit(POLICIES, BINDINGS, "inferenceservices", "CREATE", predictor(), MEMBER,
                 namespace="team-c") == []


# ---------------------------------------------------------------- shape and field names

# The fields of the admissionregistration.k8s.io/v1 types used here, from the
# Kubernetes 1.31 API reference ("ValidatingAdmissionPolicy" and
# "ValidatingAdmissionPolicyBinding", https://kubernetes.io/docs/reference/kubernetes-api/policy-resources/validating-admission-policy-v1/
# and .../validating-admission-policy-binding-v1/).
API_FIELDS = {
    "ValidatingAdmissionPolicySpec": {"auditAnnotations", "failurePolicy", "matchConditions",
                                      "matchConstraints", "paramKind", "validations", "variables"},
    "MatchResources": {"excludeResourceRules", "matchPolicy", "namespaceSelector",
                       "objectSelector", "resourceRules"},
    "NamedRuleWithOperations": {"apiGroups", "apiVersions", "operations", "resourceNames",
                                "resources", "scope"},
    "MatchCondition": {"name", "expression"},
    "Validation": {"expression", "message", "messageExpression", "reason"},
    "Variable": {"name", "expression"},
    "ValidatingAdmissionPolicyBindingSpec": {"matchResources", "paramRef", "policyName",
                                             "validationActions"},
    "LabelSelector": {"matchExpressions", "matchLabels"},
    "LabelSelectorRequirement": {"key", "operator", "values"},
}
REASONS = {"Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"}


def test_the_objects_use_only_fields_of_the_v1_api():
    for policy, binding in zip(POLICIES, BINDINGS):
        assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
        assert set(policy) == set(binding) == {"apiVersion", "kind", "metadata", "spec"}
        spec = policy["spec"]
        assert set(spec) <= API_FIELDS["ValidatingAdmissionPolicySpec"]
        assert "paramKind" not in spec and spec["failurePolicy"] in ("Fail", "Ignore")
        assert set(spec["matchConstraints"]) <= API_FIELDS["MatchResources"]
        for rule in spec["matchConstraints"]["resourceRules"]:
            assert set(rule) <= API_FIELDS["NamedRuleWithOperations"]
            assert set(rule["operations"]) <= {"CREATE", "UPDATE", "DELETE", "CONNECT", "*"}
        assert len(spec["matchConditions"]) <= 64
        for condition in spec["matchConditions"]:
            assert set(condition) == API_FIELDS["MatchCondition"]
        for variable in spec.get("variables", []):
            assert set(variable) == API_FIELDS["Variable"]
        for validation in spec["validations"]:
            assert set(validation) <= API_FIELDS["Validation"] and validation["reason"] in REASONS
            assert validation["message"] and "\n" not in validation["message"]
        bspec = binding["spec"]
        assert set(bspec) <= API_FIELDS["ValidatingAdmissionPolicyBindingSpec"]
        assert bspec["policyName"] == policy["metadata"]["name"]
        assert set(bspec["validationActions"]) <= {"Deny", "Warn", "Audit"}
        assert set(bspec["matchResources"]) <= API_FIELDS["MatchResources"]
        selector = bspec["matchResources"]["namespaceSelector"]
        assert set(selector) <= API_FIELDS["LabelSelector"]
        for requirement in selector["matchExpressions"]:
            assert set(requirement) <= API_FIELDS["LabelSelectorRequirement"]


def test_the_pulumi_sdk_knows_the_same_fields():
    """The pulumi-kubernetes SDK's v1 input types, generated from the Kubernetes
    OpenAPI, name the same fields (a second source for the list above)."""
    import inspect
    import re

    from pulumi_kubernetes.admissionregistration import v1

    def params(cls) -> set[str]:
        names = set(inspect.signature(cls.__init__).parameters) - {"self"}
        return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), n) for n in names}

    assert API_FIELDS["ValidatingAdmissionPolicySpec"] <= params(v1.ValidatingAdmissionPolicySpecArgs)
    assert API_FIELDS["Validation"] <= params(v1.ValidationArgs)
    assert API_FIELDS["ValidatingAdmissionPolicyBindingSpec"] <= params(
        v1.ValidatingAdmissionPolicyBindingSpecArgs)
    assert API_FIELDS["MatchResources"] <= params(v1.MatchResourcesArgs)


def crd_spec(path: Path, kind: str) -> dict:
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc["spec"]["names"]["kind"] == kind:
            [version] = [v for v in doc["spec"]["versions"] if v.get("storage")]
            return version["schema"]["openAPIV3Schema"]


def crds() -> Path:
    return need(upstream.kserve_crds_dir())


KSERVE_CRD_CHART = upstream.ChartRef(versions.KSERVE_CRD_CHART, versions.KSERVE_VERSION)


def crd_chart_templates() -> Path:
    return need(upstream.chart_source(KSERVE_CRD_CHART)) / "templates"


def schema_at(schema: dict, path: list[str]) -> dict | None:
    for part in path:
        if part == "[]":
            schema = schema.get("items", {})
            continue
        props = schema.get("properties")
        if props is None:
            return schema if schema.get("additionalProperties") or schema.get(
                "x-kubernetes-preserve-unknown-fields") else None
        if part not in props:
            return None
        schema = props[part]
    return schema


def field_paths(expression: str) -> set[tuple[str, ...]]:
    """Every field path an expression reads, from `object`: a comprehension's
    variable (`e` in `x.env.all(e, ...)`) stands for an item of its list."""
    import re
    bound: dict[str, list[str]] = {}
    for match in re.finditer(r"([\w.]+)\.(?:all|exists)\((\w+),", expression):
        target, var = match.groups()
        head, *rest = target.split(".")
        base = ["object"] if head == "object" else bound[head]
        bound[var] = base + rest + ["[]"]
    paths = set()
    for match in re.finditer(r"\b([a-zA-Z]\w*(?:\.[a-zA-Z]\w*)+)", expression):
        head, *rest = match.group(1).split(".")
        if rest and rest[-1] in ("all", "exists", "startsWith"):
            rest = rest[:-1]
        if head == "object":
            paths.add(tuple(["object", *rest]))
        elif head in bound:
            paths.add(tuple(bound[head] + rest))
    return paths


@pytest.mark.parametrize("policy_index,crd_file,kind", [
    (0, "inferenceservices.yaml", "InferenceService"),
    (1, "servingruntimes.yaml", "ServingRuntime")])
def test_every_field_the_expressions_read_is_in_the_pinned_crd(policy_index, crd_file, kind):
    """The API server type-checks the expressions against the CRD's schema and only
    warns; a misspelt field would silently never match. So each path must exist."""
    schema = crd_spec(crds() / crd_file, kind)
    expressions = [v["expression"] for v in POLICIES[policy_index]["spec"]["validations"]]
    paths = set().union(*(field_paths(e) for e in expressions))
    assert len(paths) > 20
    for path in sorted(paths):
        rest = list(path[1:])
        if rest[:2] == ["metadata", "annotations"]:
            continue  # ObjectMeta, not in the CRD's schema
        assert schema_at(schema, rest) is not None, ".".join(path)


def test_every_container_and_pod_field_of_the_crd_is_checked():
    """Each container of a component (a `model`, a framework shorthand, `art`, the
    lists) and each component is covered: the CRD is the list."""
    spec = crd_spec(crds() / "inferenceservices.yaml", "InferenceService")["properties"]["spec"]
    for component, single in admission.COMPONENT_SINGLE_CONTAINERS.items():
        props = spec["properties"][component]["properties"]
        containers = {name for name, p in props.items()
                      if "envFrom" in p.get("properties", {})}
        assert containers == set(single), component
        lists = {name for name, p in props.items()
                 if "envFrom" in p.get("items", {}).get("properties", {})}
        assert lists == set(admission.CONTAINER_LISTS), component
    assert set(spec["properties"]) == set(admission.COMPONENT_SINGLE_CONTAINERS)
    volume = spec["properties"]["predictor"]["properties"]["volumes"]["items"]["properties"]
    naming_a_secret = {name for name, p in volume.items()
                       if name == "secret" or any("secret" in f.lower()
                                                  for f in p.get("properties", {}))}
    assert naming_a_secret == {kind for kind, _ in admission.SECRET_VOLUME_FIELDS}


@pytest.mark.parametrize("kind", ["InferenceGraph", "TrainedModel"])
def test_inference_graphs_and_trained_models_name_nothing_to_refuse(kind):
    """Members may only read them (the Role), and at the pinned KServe their spec has no
    field that could name a Secret, a service account, a toleration or a node: no
    policy matches them. Should a later KServe add one, this fails."""
    path = crd_chart_templates() / f"serving.kserve.io_{kind.lower()}s.yaml"
    spec = crd_spec(path, kind)["properties"]["spec"]
    words = ("secret", "serviceaccount", "toleration", "nodename", "volume", "env", "container")

    def names(schema: dict, prefix: str = ""):
        for name, sub in (schema.get("properties") or {}).items():
            yield prefix + name
            yield from names(sub, prefix + name + ".")
        if "items" in schema:
            yield from names(schema["items"], prefix)
    found = [n for n in names(spec) if any(w in n.lower().rsplit(".", 1)[-1] for w in words)]
    assert found == [], found
