"""One owner per namespace: a namespace one of the cluster's own layers creates
(monitoring, when it is enabled; the system namespaces always) is refused for a
project, a model, a runtime, a model store and a storage secret, each at its key."""
import pytest

from components.problems import ConfigError
from components.stack_config import parse_stack_config

NODES = [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}]
MONITORING = {"monitoring": {"enabled": True}, "grafanaAdminPassword": "correct-horse-battery"}
KEYS = {"accessKeyId": "AKIAEXAMPLEKEYID0003", "secretAccessKey": "s3cr3t/Example+Key=value"}
SECRET_KEYS = frozenset({"grafanaAdminPassword", "storageSecrets"})


def model(namespace):
    return {"name": "m", "namespace": namespace, "format": "sklearn", "storageUri": "gs://a/b"}


def parse(**extra):
    return parse_stack_config({"nodes": NODES, **extra}, has_secret_private_key=True,
                              secret_keys=SECRET_KEYS)


def problems(**extra):
    with pytest.raises(ConfigError) as caught:
        parse(**extra)
    return caught.value.problems


# Each way a stack file can put something in a namespace, with the key reported.
IN_NAMESPACE = {
    "project": lambda ns: ({"projects": [{"name": ns}]}, f"projects[0] ({ns}).name"),
    "model": lambda ns: ({"models": [model(ns)]}, "models[0] (m).namespace"),
    "runtime": lambda ns: ({"runtimes": [{"name": "rt", "namespace": ns, "image": "img:1",
                                          "modelFormats": ["sklearn"]}],
                            "models": [model("team-a")]}, "runtimes[0] (rt).namespace"),
    "model store": lambda ns: ({"modelStores": [{"name": "models", "namespace": ns,
                                                 "size": "1Gi"}],
                                "models": [model("team-a")]},
                               "modelStores[0] (models).namespace"),
    "storage secret": lambda ns: ({"storageSecrets": [{"name": "minio", "namespace": ns,
                                                       "endpoint": "minio:9000", **KEYS}],
                                   "models": [model("team-a")]},
                                  "storageSecrets[0] (minio).namespace"),
}


@pytest.mark.parametrize("kind", sorted(IN_NAMESPACE))
def test_the_monitoring_namespace_has_one_owner(kind):
    extra, key = IN_NAMESPACE[kind]("monitoring")
    found = [p for p in problems(**extra, **MONITORING) if p.startswith(f"kserve-cluster:{key}")]
    assert len(found) == 1, problems(**extra, **MONITORING)
    assert "= 'monitoring':" in found[0]
    assert "the monitoring stack creates it" in found[0]
    assert "Fix:" in found[0]


@pytest.mark.parametrize("kind", sorted(IN_NAMESPACE))
def test_monitoring_off_leaves_the_namespace_free(kind):
    extra, _ = IN_NAMESPACE[kind]("monitoring")
    parse(**extra)


@pytest.mark.parametrize("kind", sorted(IN_NAMESPACE))
@pytest.mark.parametrize("namespace", ["kube-system", "kserve", "istio-system", "default",
                                       "nfs-provisioner", "kube-anything"])
def test_system_namespaces_are_nobody_elses(kind, namespace):
    extra, key = IN_NAMESPACE[kind](namespace)
    found = [p for p in problems(**extra) if p.startswith(f"kserve-cluster:{key}")]
    assert len(found) == 1, problems(**extra)
    assert f"= {namespace!r}:" in found[0] and "Fix:" in found[0]


def test_every_owner_is_reported_together():
    found = problems(projects=[{"name": "monitoring"}],
                     models=[model("monitoring")],
                     modelStores=[{"name": "models", "namespace": "monitoring", "size": "1Gi"}],
                     **MONITORING)
    assert len(found) == 3, found
