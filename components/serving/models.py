"""Namespaces, custom ServingRuntimes and InferenceServices from the stack config."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.access.namespace_owner import moved_from_projects
from components.gpu.pods import gpu_resources, predictor_gpu_fields
from components.serving import huggingface
from components.serving.config import Model, Runtime, ServingConfig
from components.serving.context import ClusterHandle, k8s_options

KSERVE_API = "serving.kserve.io/v1beta1"
RUNTIME_API = "serving.kserve.io/v1alpha1"
# Model images and weights are pulled on first rollout: allow for slow links.
ROLLOUT_TIMEOUT = "30m"
READY = {"pulumi.com/waitFor": "condition=Ready"}


def runtime_spec(runtime: Runtime) -> dict:
    """A ServingRuntime spec: one container, V1 protocol, the declared formats."""
    container: dict = {"name": "kserve-container", "image": runtime.image}
    if runtime.args:
        container["args"] = list(runtime.args)
    if runtime.env:
        container["env"] = [{"name": name, "value": value} for name, value in runtime.env]
    formats = []
    for fmt in runtime.model_formats:
        entry = {"name": fmt.name, "autoSelect": True}
        if fmt.version is not None:
            entry["version"] = fmt.version
        formats.append(entry)
    return {"supportedModelFormats": formats, "protocolVersions": ["v1"],
            "containers": [container]}


# Set on the predictor of a model read from uploaded files: a hash of those files.
# New files change it, and with it the pod spec, so KServe starts pods that load them.
FILES_REVISION_ENV = "KSERVE_CLUSTER_FILES_REVISION"


def inference_service_spec(model: Model, rollout: bool, files_revision: str = "") -> dict:
    """The InferenceService spec.

    `rollout=False` is the first version: the primary storageUri alone. With
    `rollout=True` the spec carries the canary, if any: its storageUri becomes
    the latest revision and `canaryTrafficPercent` of the requests go to it,
    the rest to the revision rolled out before.
    """
    canary = model.canary if rollout else None
    gpus = gpu_resources(model.gpu) if model.gpu else {}
    predictor_model: dict = {
        "modelFormat": {"name": model.format},
        "storageUri": canary.storage_uri if canary else model.storage_uri,
        "resources": {"requests": {"cpu": model.cpu, "memory": model.memory, **gpus},
                      "limits": {"cpu": model.cpu, "memory": model.memory, **gpus}},
    }
    if model.runtime:
        predictor_model["runtime"] = model.runtime
    # The Hugging Face runtime: its backend, and no hub (components/serving/huggingface.py).
    args = huggingface.predictor_args(model)
    if args:
        predictor_model["args"] = args
    env = huggingface.predictor_env(model)
    if files_revision:
        env.append({"name": FILES_REVISION_ENV, "value": files_revision})
    if env:
        predictor_model["env"] = env
    predictor: dict = {"model": predictor_model, **predictor_gpu_fields(model.gpu)}
    if model.storage_secret:
        # The ServiceAccount components/storage/secrets.py makes, named as the secret.
        predictor["serviceAccountName"] = model.storage_secret
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary.traffic_percent
    if model.scaling is not None:
        # Both specs carry it: the canary revision scales by the same settings.
        predictor.update(model.scaling.predictor_fields())
    return {"predictor": predictor}


def model_annotations(model: Model) -> dict:
    """The InferenceService's annotations: Pulumi's wait, and the autoscaler class."""
    return {**READY, **(model.scaling.annotations() if model.scaling else {})}


class ModelWorkloads(pulumi.ComponentResource):
    """Everything users declare to serve: namespaces, runtimes, models.

    Each model is two resources, so that a canary is never the first version:
    - `<model>` creates the InferenceService with the primary storageUri and
      waits until it is Ready; it never updates the spec afterwards;
    - `<model>-rollout` applies the spec from the stack file on top of it
      (server-side apply): the canary split, promotion and rollback. KServe only
      splits traffic once an earlier revision has rolled out, which the first
      resource guarantees, so a canary on a fresh stack does not get 100%.
    """

    def __init__(self, cluster: ClusterHandle, serving: ServingConfig,
                 webhook_ready: pulumi.Resource, cluster_runtimes: pulumi.Resource,
                 opts: Optional[pulumi.ResourceOptions] = None, storage=None,
                 namespaces: Optional[Mapping[str, pulumi.Resource]] = None,
                 after: Sequence[pulumi.Resource] = (),
                 gpu_ready: Optional[pulumi.Resource] = None):
        """`storage` (components/storage/storage.py: Storage) adds the namespaces of its
        stores and secrets, fills them, and names what each model waits for;
        `namespaces`: namespaces another component owns (projects); `after`: what
        every model also waits for (the ingress policies that protect them); `gpu_ready`:
        what GPU models also wait for (the device plugin, components/gpu)."""
        super().__init__("kserve-cluster:serving:ModelWorkloads", "models", None, opts)
        extra = storage.namespaces if storage is not None else ()
        owned_elsewhere = dict(namespaces or {})
        self.namespaces = {
            name: owned_elsewhere.get(name) or k8s.core.v1.Namespace(
                f"namespace-{name}", metadata=k8s.meta.v1.ObjectMetaArgs(name=name),
                opts=k8s_options(self, cluster, aliases=moved_from_projects()))
            for name in dict.fromkeys([*serving.namespaces, *extra])
        }
        if storage is not None:
            storage.attach(self.namespaces)
        gate: Sequence[pulumi.Resource] = [webhook_ready, *after]
        self.runtimes = {
            (runtime.namespace, runtime.name): k8s.apiextensions.CustomResource(
                f"runtime-{runtime.namespace}-{runtime.name}",
                api_version=RUNTIME_API, kind="ServingRuntime",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=runtime.name, namespace=runtime.namespace),
                spec=runtime_spec(runtime),
                opts=k8s_options(self, cluster,
                                 depends_on=[*gate, self.namespaces[runtime.namespace]]))
            for runtime in serving.runtimes
        }
        # Keyed by `namespace/name` (Model.key): one model name may be used in two namespaces.
        self.services: dict[str, k8s.apiextensions.CustomResource] = {}
        self.rollouts: dict[str, k8s.apiextensions.CustomResourcePatch] = {}
        for model in serving.models:
            runtime = (self.runtimes[model.namespace, model.runtime] if model.runtime
                       else cluster_runtimes)
            self._model(cluster, model, [*gate, self.namespaces[model.namespace], runtime,
                                         *(storage.model_after(model) if storage else []),
                                         *([gpu_ready] if model.gpu and gpu_ready else [])],
                        storage.model_revision(model) if storage else "")
        self.register_outputs({"models": [m.key for m in serving.models]})

    def _model(self, cluster: ClusterHandle, model: Model, after: list,
               files_revision: str = "") -> None:
        resource_name = f"isvc-{model.namespace}-{model.name}"
        timeouts = pulumi.CustomTimeouts(create=ROLLOUT_TIMEOUT, update=ROLLOUT_TIMEOUT)
        first = k8s.apiextensions.CustomResource(
            resource_name, api_version=KSERVE_API, kind="InferenceService",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=model.name, namespace=model.namespace,
                                                annotations=model_annotations(model)),
            spec=inference_service_spec(model, rollout=False, files_revision=files_revision),
            # Never updated: an update would apply its first spec again over the
            # rollout's. The autoscaler class annotation changes through the rollout.
            opts=k8s_options(self, cluster, depends_on=after,
                             ignore_changes=["spec", "metadata.annotations"],
                             custom_timeouts=timeouts))
        rollout = k8s.apiextensions.CustomResourcePatch(
            f"{resource_name}-rollout", api_version=KSERVE_API, kind="InferenceService",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(
                name=model.name, namespace=model.namespace,
                # Take over the fields the first resource set (storageUri).
                annotations={**model_annotations(model), "pulumi.com/patchForce": "true"}),
            spec=inference_service_spec(model, rollout=True, files_revision=files_revision),
            # Removing the model deletes the InferenceService; its patch goes with it.
            opts=k8s_options(self, cluster, depends_on=[first], deleted_with=first,
                             custom_timeouts=timeouts))
        self.services[model.key] = first
        self.rollouts[model.key] = rollout
