"""One owner per namespace, under Pulumi's mock runtime: for every example stack
and every combination of features built here, the program either refuses the
stack file or declares each Namespace once, and no namespace of a stack file's
item (project, model, runtime, store, secret) is one a layer of the cluster
uses (its own Namespace, a chart's namespace, an object placed there)."""
import pytest

import test_program_features_together
from components.namespaces import ReservedNamespaces
from components.offline.program import evaluate
from components.stack_file import stack_file_config
from access_fixtures import expires_in

NAMESPACE = "kubernetes:core/v1:Namespace"
RELEASE = "kubernetes:helm.sh/v3:Release"
PASSWORD = {"grafanaAdminPassword": "not-a-real-password-1"}
KEYS = {"accessKeyId": "AKIAEXAMPLEKEYID0004", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"}
MONITORING = {"monitoring": {"enabled": True}}
TOKENS = [{"name": "ci", "expires": expires_in(300)}]


def model(namespace, name="iris", **extra):
    return {"name": name, "namespace": namespace, "format": "sklearn",
            "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model", **extra}


def secret(namespace):
    return {"name": "minio", "namespace": namespace, "endpoint": "minio.minio.svc:9000",
            "useHttps": False, **KEYS}


def lab(**extra):
    config = stack_file_config("lab")
    config.update(extra)
    return config


# (config, storageSecrets or None): each a stack file a user could write.
COMBINATIONS = {
    "dev": (stack_file_config("dev"), None),
    "lab": (stack_file_config("lab"), None),
    "torchserve-example": (stack_file_config("torchserve-example"), None),
    "features-together": (test_program_features_together.config(), None),
    "lab-monitoring": (lab(**MONITORING), None),
    "nfs-store-and-secret-in-a-project": (lab(
        projects=[{"name": "team-a", "tokens": TOKENS}],
        storage={"nfs": {"server": "10.0.2.5", "path": "/exports/models"}},
        modelStores=[{"name": "models", "namespace": "team-a", "size": "1Gi"}],
        models=[model("team-a", storageUri="s3://models/iris", storageSecret="minio"),
                model("team-b", name="open")], **MONITORING), [secret("team-a")]),
    # A second owner of the monitoring namespace, each way a stack file can ask for one.
    "project-monitoring": (lab(projects=[{"name": "monitoring", "tokens": TOKENS}],
                               **MONITORING), None),
    "store-in-monitoring": (lab(
        modelStores=[{"name": "models", "namespace": "monitoring", "size": "1Gi"}],
        models=[model("kserve-test")], **MONITORING), None),
    "secret-in-monitoring": (lab(models=[model("kserve-test")], **MONITORING),
                             [secret("monitoring")]),
    "model-in-monitoring": (lab(models=[model("monitoring")], **MONITORING), None),
    # ... and of the layers' namespaces.
    "project-kserve": (lab(projects=[{"name": "kserve", "tokens": TOKENS}]), None),
    "model-in-istio-system": (lab(models=[model("istio-system")]), None),
    "store-in-nfs-provisioner": (lab(
        storage={"nfs": {"server": "10.0.2.5", "path": "/exports/models"}},
        modelStores=[{"name": "models", "namespace": "nfs-provisioner", "size": "1Gi"}],
        models=[model("kserve-test")]), None),
}
ACCEPTED = {"dev", "lab", "torchserve-example", "features-together", "lab-monitoring",
            "nfs-store-and-secret-in-a-project"}


def run(name):
    config, secrets = COMBINATIONS[name]
    secret_config = dict(PASSWORD) if config.get("monitoring") else {}
    if secrets is not None:
        secret_config["storageSecrets"] = secrets
    return evaluate(config, secret_config=secret_config)


def declared(evaluation) -> list[str]:
    return [r.inputs["metadata"]["name"] for r in evaluation.by_type(NAMESPACE)]


def items(evaluation) -> set[str]:
    """The namespaces declared for projects and for models, runtimes, stores, secrets."""
    return {r.inputs["metadata"]["name"] for r in evaluation.by_type(NAMESPACE)
            if r.name == f"namespace-{r.inputs['metadata']['name']}"}


def layer_namespaces(evaluation) -> set[str]:
    """Namespaces the layers use: a chart's, a Namespace of a layer's own, and any
    other one an object is placed in."""
    owned = {r.inputs["namespace"] for r in evaluation.by_type(RELEASE)}
    owned |= set(declared(evaluation)) - items(evaluation)
    placed = {r.inputs["metadata"]["namespace"] for r in evaluation.registrations
              if isinstance(r.inputs.get("metadata"), dict)
              and r.inputs["metadata"].get("namespace")}
    return owned | (placed - items(evaluation))


@pytest.mark.parametrize("name", sorted(COMBINATIONS))
def test_each_namespace_is_declared_once_or_the_stack_is_refused(name):
    try:
        evaluation = run(name)
    except Exception as error:  # the program's RunError, with every problem
        assert name not in ACCEPTED, str(error)
        assert "problem" in str(error) and "in the stack config" in str(error)
        assert "not a namespace for a" in str(error)
        return
    assert name in ACCEPTED, f"{name} was accepted: {sorted(declared(evaluation))}"
    namespaces = declared(evaluation)
    assert len(namespaces) == len(set(namespaces)), sorted(namespaces)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_the_reserved_list_holds_every_namespace_a_layer_uses(name):
    config, _ = COMBINATIONS[name]
    evaluation = run(name)
    reserved = ReservedNamespaces(monitoring=bool(config.get("monitoring")))
    layers = layer_namespaces(evaluation)
    assert layers, "expected the layers' namespaces"
    assert {ns for ns in layers if reserved.owner(ns) is None} == set()
    assert not layers & items(evaluation)
