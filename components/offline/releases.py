"""The Helm releases the program declares, exactly as it passes them to helm.v3.Release.

Taken from the mock evaluation of the program (components/offline/program.py)
for a few stack variants, so that tests render every release with the values the
program really computes, and scripts/fetch_upstream.py fetches every chart the
program really uses. A release another layer adds shows up here by itself.
"""
from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from components import versions
from components.offline.program import Registration, evaluate
from components.stack_file import stack_file_config
from components.upstream import ChartRef

RELEASE_TYPE = "kubernetes:helm.sh/v3:Release"

# Inputs that change what `helm template` renders, and those that only change how
# the release is installed. Any other input is refused, so that a new option the
# program starts using (valueYamlFiles, postrender, ...) cannot slip past the tests.
RENDER_INPUTS = {"name", "chart", "version", "namespace", "values", "repositoryOpts", "skipCrds"}
INSTALL_INPUTS = {"createNamespace", "compat", "waitForJobs", "timeout", "atomic", "cleanupOnFail",
                  "maxHistory", "skipAwait", "description", "disableWebhooks", "replace",
                  "forceUpdate", "recreatePods", "resetValues", "reuseValues", "dependencyUpdate"}


def _lab() -> dict:
    return stack_file_config("lab")


def _raw_deployment() -> dict:
    """The lab with every setting the charts see moved off its chart default: the
    other deployment mode, another domain, node port and pod network, and model
    storage on NFS (the provisioner that comes as a chart)."""
    config = _lab()
    config["serving"] = {**config.get("serving", {}), "deploymentMode": "RawDeployment",
                         "ingressDomain": "models.lab.internal", "ingressNodePort": 30080,
                         "httpsNodePort": 30443}
    config["kubernetes"] = {**config.get("kubernetes", {}), "podCidr": "10.244.0.0/16"}
    config["storage"] = {"nfs": {"server": "10.0.2.5", "path": "/exports/models"}}
    # Monitoring, with a model that scales on requests/s (prometheus-adapter's rules).
    config["monitoring"] = {"enabled": True, "grafanaNodePort": 30301, "retention": "2d"}
    config["models"] = [{"name": "tf-flower", "namespace": "kserve-test", "format": "tensorflow",
                         "storageUri": "gs://kfserving-examples/models/tensorflow/flowers",
                         "scaling": {"minReplicas": 1, "maxReplicas": 3, "metric": "rps",
                                     "target": 20}}]
    return config


def _gpu() -> dict:
    """The GPU example: a GPU worker, so the device plugin's release is declared;
    with monitoring on (the raw-deployment variant's settings, so that the monitoring
    charts render the same), so dcgm-exporter's is too, and prometheus-adapter's GPU rule."""
    config = stack_file_config("gpu-example")
    config["monitoring"] = dict(_raw_deployment()["monitoring"])
    return config


# Stack configs whose releases together cover every release and values branch.
VARIANTS: dict[str, Callable[[], dict]] = {"lab": _lab, "raw-deployment": _raw_deployment,
                                           "gpu": _gpu}
# Keys each variant sets with `pulumi config set --secret` (placeholders, never used).
VARIANT_SECRETS: dict[str, dict] = {
    "raw-deployment": {"grafanaAdminPassword": "placeholder-not-a-password"},
    "gpu": {"grafanaAdminPassword": "placeholder-not-a-password"}}
# The variants above install the default train. The other trains' charts and values
# (renamed charts and values, other deployment-mode names) come from the same stacks on
# each train: "<variant>@<minor>". The GPU variant adds no train-dependent release.
TRAINED = ("lab", "raw-deployment")


def _on_train(variant: str, minor: str) -> Callable[[], dict]:
    def config() -> dict:
        config = VARIANTS[variant]()
        config["kubernetes"] = {**config.get("kubernetes", {}),
                                "version": versions.TRAINS[minor].kubernetes_version}
        return config
    return config


TRAIN_VARIANTS: dict[str, Callable[[], dict]] = {
    f"{variant}@{minor}": _on_train(variant, minor)
    for minor in versions.TRAINS if minor != versions.KUBERNETES_MINOR for variant in TRAINED}
ALL_VARIANTS: dict[str, Callable[[], dict]] = {**VARIANTS, **TRAIN_VARIANTS}
VARIANT_SECRETS.update({name: VARIANT_SECRETS[name.split("@")[0]]
                        for name in TRAIN_VARIANTS if name.split("@")[0] in VARIANT_SECRETS})


def variant_train(variant: str) -> versions.Train:
    """The release train a variant's stack installs."""
    return versions.TRAINS[variant.split("@")[1]] if "@" in variant else versions.DEFAULT_TRAIN


def variants_of_trains(minors: Iterable[str]) -> list[str]:
    """Every variant (ALL_VARIANTS) that installs one of the trains `minors`."""
    wanted = set(minors)
    return [name for name in ALL_VARIANTS if variant_train(name).kubernetes_minor in wanted]


@dataclass(frozen=True)
class DeclaredRelease:
    variant: str          # which entry of VARIANTS declared it
    resource: str         # the Pulumi resource name
    name: str             # the Helm release name
    namespace: str
    chart: ChartRef
    values: dict
    include_crds: bool    # helm installs the chart's crds/ unless skipCrds
    kube_version: str = versions.KUBERNETES_VERSION  # the stack's Kubernetes (helm --kube-version)

    @property
    def id(self) -> str:
        return f"{self.variant}:{self.resource}"


def _whole_numbers(value: Any) -> Any:
    """The mock runtime hands numbers back as floats (protobuf carries doubles);
    the provider gives helm 31903, not 31903.0, so whole floats become ints."""
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def release_of(variant: str, registration: Registration) -> DeclaredRelease:
    inputs = registration.inputs
    unknown = set(inputs) - RENDER_INPUTS - INSTALL_INPUTS
    if unknown:
        raise ValueError(f"{registration.name}: helm.v3.Release input(s) {', '.join(sorted(unknown))} "
                         "are not understood by components/offline/releases.py; teach it whether "
                         "they change what the chart renders")
    repo = (inputs.get("repositoryOpts") or {}).get("repo")
    return DeclaredRelease(
        variant=variant, resource=registration.name, name=inputs["name"],
        namespace=inputs.get("namespace", "default"),
        chart=ChartRef(chart=inputs["chart"], version=inputs["version"], repo=repo),
        values=_whole_numbers(copy.deepcopy(inputs.get("values") or {})),
        include_crds=not inputs.get("skipCrds", False),
        kube_version=variant_train(variant).kubernetes_version)


def declared_releases(variants: Optional[Iterable[str]] = None) -> list[DeclaredRelease]:
    """Every helm.v3.Release of every variant (default: those on the default train; any
    name of ALL_VARIANTS), variant by variant, each variant's by resource name."""
    releases = []
    for variant in variants or VARIANTS:
        releases += copy.deepcopy(_releases_of(variant))
    return releases


@functools.lru_cache(maxsize=None)
def _releases_of(variant: str) -> tuple[DeclaredRelease, ...]:
    # One evaluation per variant and process: the program is deterministic, but the
    # order its resources register in is the event loop's. Sorted, so that every
    # process (each pytest-xdist worker collects the tests) lists them alike.
    evaluation = evaluate(ALL_VARIANTS[variant](), secret_config=VARIANT_SECRETS.get(variant))
    return tuple(sorted((release_of(variant, r) for r in evaluation.by_type(RELEASE_TYPE)),
                        key=lambda release: release.resource))


def declared_charts(releases: Iterable[DeclaredRelease]) -> list[ChartRef]:
    """The distinct charts of `releases`, in the order they first appear there."""
    return list(dict.fromkeys(release.chart for release in releases))
