"""Per-model autoscaling: `models[].scaling`, checked per deployment mode (pure).

    scaling: {minReplicas, maxReplicas, metric, target, containerConcurrency}

maps onto the InferenceService predictor's fields of the pinned KServe
(`minReplicas`, `maxReplicas`, `scaleMetric`, `scaleTarget`,
`containerConcurrency`). Who does the scaling depends on the mode and the metric,
as the pinned KServe wires it (pkg/controller/v1beta1/inferenceservice/reconcilers/
knative/ksvc_reconciler.go, hpa/hpa_reconciler.go, and the webhook in
pkg/apis/serving/v1beta1/inference_service_validation.go):

- Serverless, `concurrency` or `rps` (default concurrency): Knative's pod
  autoscaler (KPA) from the revision's annotations; the only one that scales to 0.
- Serverless, `cpu`: Knative's HPA class (annotation
  `autoscaling.knative.dev/class: hpa.autoscaling.knative.dev`), served by the
  Knative HPA extension, which the program then installs; the target is a
  utilisation percentage.
- Serverless, `memory`: refused. Knative's HPA class reads a memory target as MiB,
  and the pinned KServe's webhook refuses any HPA target above 100, so no useful
  target passes both.
- RawDeployment, `cpu` or `memory` (default cpu): KServe's own HPA on resource
  utilisation (percent of the request).
- RawDeployment, `rps`: the pinned KServe cannot (its raw HPA knows cpu and memory
  only, and its webhook refuses rps there). This project delivers it: the model
  is annotated `serving.kserve.io/autoscalerClass: external` (KServe then leaves
  the scaling alone) and gets an HPA of its own on the requests per second the
  Istio ingress gateway counts, served by prometheus-adapter; it needs
  `monitoring.enabled`.
- RawDeployment, `concurrency`: refused (Knative's metric; there is no
  queue-proxy to count it).
- RawDeployment, `gpu`: like `rps`, an HPA of this project (KServe's webhook
  refuses the metric), on the GPU utilisation dcgm-exporter reports per pod,
  served by prometheus-adapter. Needs `monitoring.enabled` and `resources.gpu`.
- Serverless, `gpu`: refused. Knative owns the replicas there and scales on
  requests (KPA) or through its HPA class on cpu/memory only.

Every HPA reads a metrics API that a kubeadm cluster does not have until
prometheus-adapter serves it (`monitoring.enabled`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from components.problems import Problems, check_int, check_mapping, close_match

SERVERLESS = "Serverless"  # as in components/serving/config.py (no import: config imports us)
RAW_DEPLOYMENT = "RawDeployment"

SCALING_KEYS = {"minReplicas", "maxReplicas", "metric", "target", "containerConcurrency"}
CONCURRENCY, RPS, CPU, MEMORY, GPU = "concurrency", "rps", "cpu", "memory", "gpu"
METRICS = (CONCURRENCY, RPS, CPU, MEMORY, GPU)
# What each mode accepts (the rules are in the module's docstring).
MODE_METRICS = {SERVERLESS: (CONCURRENCY, RPS, CPU), RAW_DEPLOYMENT: (CPU, MEMORY, RPS, GPU)}
# Metrics our own HPA scales on, through prometheus-adapter (RawDeployment).
ADAPTER_METRICS = (RPS, GPU)

# Who scales a model's replicas.
KNATIVE_KPA = "knative-kpa"    # Knative's pod autoscaler (concurrency, rps)
KNATIVE_HPA = "knative-hpa"    # Knative's HPA class (cpu), needs the HPA extension
KSERVE_HPA = "kserve-hpa"      # the HPA KServe creates in RawDeployment (cpu, memory)
ADAPTER_HPA = "adapter-hpa"    # our HPA on requests/s or GPU use, through prometheus-adapter

KNATIVE_CLASS_ANNOTATION = "autoscaling.knative.dev/class"
KNATIVE_HPA_CLASS = "hpa.autoscaling.knative.dev"
KNATIVE_KPA_CLASS = "kpa.autoscaling.knative.dev"  # what KServe sets when none is given
KSERVE_AUTOSCALER_CLASS_ANNOTATION = "serving.kserve.io/autoscalerClass"
KSERVE_EXTERNAL_AUTOSCALER = "external"
KSERVE_HPA_CLASS = "hpa"  # KServe's default class in RawDeployment

MAX_REPLICAS = 1000  # a sanity bound: a lab never gets near it
# Knative's config-defaults container-concurrency-max-limit (the pinned release).
CONTAINER_CONCURRENCY_MAX = 1000
TARGET_MAX = 1_000_000
# the pinned KServe's webhook refuses HPA targets outside 1-100 (a utilisation percentage).
UTILIZATION_RANGE = (1, 100)


@dataclass(frozen=True)
class Scaling:
    autoscaler: str
    min_replicas: Optional[int] = None
    max_replicas: Optional[int] = None
    metric: Optional[str] = None  # as given; None = the autoscaler's default
    target: Optional[int] = None
    container_concurrency: Optional[int] = None
    # Where it was written (`models[1] (iris).scaling`), for later cross-checks.
    key: str = field(default="", compare=False)

    @property
    def effective_metric(self) -> str:
        if self.metric:
            return self.metric
        return CPU if self.autoscaler in (KSERVE_HPA, KNATIVE_HPA) else CONCURRENCY

    @property
    def scales(self) -> bool:
        """False when min and max leave the autoscaler no room."""
        if self.max_replicas is None:
            # Knative: no upper bound; KServe's raw HPA: max = min.
            return self.autoscaler in (KNATIVE_KPA, KNATIVE_HPA)
        return self.max_replicas > (self.min_replicas if self.min_replicas is not None else 1)

    def predictor_fields(self) -> dict:
        """The predictor's fields (next to `model`) for this setting."""
        fields: dict[str, Any] = {}
        if self.min_replicas is not None:
            fields["minReplicas"] = self.min_replicas
        if self.max_replicas is not None:
            fields["maxReplicas"] = self.max_replicas
        if self.autoscaler != ADAPTER_HPA:
            # rps and gpu in RawDeployment go to our own HPA: KServe's webhook refuses them.
            if self.metric is not None:
                fields["scaleMetric"] = self.metric
            if self.target is not None:
                fields["scaleTarget"] = self.target
        if self.container_concurrency is not None:
            fields["containerConcurrency"] = self.container_concurrency
        return fields

    def annotations(self) -> dict[str, str]:
        """The InferenceService annotation KServe reads to pick the autoscaler.

        Always written, the default class included: the patch that carries it
        then owns the value, so switching metric (cpu -> concurrency) switches
        the class back instead of leaving the old one behind.
        """
        if self.autoscaler in (KNATIVE_KPA, KNATIVE_HPA):
            return {KNATIVE_CLASS_ANNOTATION:
                    KNATIVE_HPA_CLASS if self.autoscaler == KNATIVE_HPA else KNATIVE_KPA_CLASS}
        return {KSERVE_AUTOSCALER_CLASS_ANNOTATION:
                KSERVE_EXTERNAL_AUTOSCALER if self.autoscaler == ADAPTER_HPA else KSERVE_HPA_CLASS}

    @property
    def needs_metrics_api(self) -> bool:
        """An HPA that is asked to scale reads metrics.k8s.io or custom.metrics.k8s.io."""
        return self.autoscaler in (KNATIVE_HPA, ADAPTER_HPA) or (
            self.autoscaler == KSERVE_HPA and self.scales)


def autoscaler_for(mode: str, metric: Optional[str]) -> str:
    if mode == SERVERLESS:
        return KNATIVE_HPA if metric in (CPU, MEMORY) else KNATIVE_KPA
    return ADAPTER_HPA if metric in ADAPTER_METRICS else KSERVE_HPA


def default_autoscaler(mode: str) -> str:
    """Who scales a model without `scaling`: KServe's defaults (min 1; Serverless
    has no max, RawDeployment's HPA gets max = min, so it never scales)."""
    return autoscaler_for(mode, None)


def parse_scaling(problems: Problems, key: str, raw: Any, mode: str) -> Scaling:
    """`models[i].scaling`, every rule checked for `mode`; KServe's defaults
    (nothing in the spec, the mode's default autoscaler) when not given."""
    if raw is None:
        return Scaling(autoscaler=default_autoscaler(mode), key=key)
    given = check_mapping(problems, key, raw,
                          "give {minReplicas, maxReplicas, metric, target, containerConcurrency}.")
    problems.unknown_keys(key, given, SCALING_KEYS)
    serverless = mode == SERVERLESS

    metric = given.get("metric")
    if metric is not None and metric not in METRICS:
        # Only what this mode accepts is offered, the guess included.
        shown_mode = SERVERLESS if serverless else RAW_DEPLOYMENT
        accepted = MODE_METRICS[shown_mode]
        guess = close_match(metric, accepted)
        problems.add(f"{key}.metric", metric, "unknown scaling metric"
                     + (f"; did you mean {guess!r}?" if guess else "."),
                     f"use {', '.join(accepted[:-1])} or {accepted[-1]} (the metrics of "
                     f"deploymentMode {shown_mode}).")
        metric = None
    # The messages below are train-neutral: KServe's webhook (pkg/apis/serving/v1beta1/
    # inference_service_validation.go) refuses a target above 100 in the 1.31 and 1.32 trains'
    # KServe alike; the newer trains' were not re-checked for these messages.
    if metric == MEMORY and serverless:
        problems.add(f"{key}.metric", metric,
                     "memory cannot be used in Serverless mode: Knative's HPA class reads the "
                     "target as MiB per pod, and KServe's webhook refuses any target above "
                     "100, so no useful "
                     "target passes both.",
                     "use concurrency or rps (Knative's autoscaler), or cpu; or use "
                     f"serving.deploymentMode: {RAW_DEPLOYMENT}, where memory is a percentage "
                     "of the memory request.")
        metric = None
    if metric == GPU and serverless:
        problems.add(f"{key}.metric", metric,
                     "scaling on GPU utilisation is done by an HPA of this project on the "
                     f"Deployment KServe makes in {RAW_DEPLOYMENT}; in {SERVERLESS} Knative "
                     "owns the replicas and scales on requests (or cpu through its HPA class).",
                     f"use serving.deploymentMode: {RAW_DEPLOYMENT}, or scale on concurrency "
                     "or rps (Knative's autoscaler).")
        metric = None
    if metric == CONCURRENCY and not serverless:
        problems.add(f"{key}.metric", metric,
                     "concurrency is Knative's autoscaler metric (its queue-proxy counts the "
                     f"requests in flight); {RAW_DEPLOYMENT} has neither, and KServe's "
                     "webhook refuses it there.",
                     "use rps (requests per second, through prometheus-adapter), cpu or memory; "
                     f"or serving.deploymentMode: {SERVERLESS}.")
        metric = None
    autoscaler = autoscaler_for(mode, metric)

    min_replicas = check_int(problems, f"{key}.minReplicas", given.get("minReplicas"), None,
                             0, MAX_REPLICAS,
                             f"give a whole number from 0 (scale to zero, Serverless only) "
                             f"to {MAX_REPLICAS}, e.g. 1.")
    max_replicas = check_int(problems, f"{key}.maxReplicas", given.get("maxReplicas"), None,
                             1, MAX_REPLICAS,
                             f"give a whole number from 1 to {MAX_REPLICAS}, at least minReplicas, "
                             "e.g. 3.")
    if min_replicas == 0 and not serverless:
        problems.add(f"{key}.minReplicas", 0,
                     f"scale to zero is Serverless only: in {RAW_DEPLOYMENT} KServe "
                     "runs the model as a Deployment with an HPA, "
                     "which keeps at least 1 replica.",
                     f"give minReplicas: 1 or more, or use serving.deploymentMode: {SERVERLESS}.")
        min_replicas = None
    elif min_replicas == 0 and autoscaler == KNATIVE_HPA:
        problems.add(f"{key}.minReplicas", 0,
                     "scaling on cpu goes through an HPA, which cannot scale to zero; only "
                     "Knative's own autoscaler (concurrency, rps) can.",
                     "give minReplicas: 1 or more, or scale on concurrency or rps.")
        min_replicas = None
    if min_replicas is not None and max_replicas is not None and max_replicas < min_replicas:
        problems.add(f"{key}.maxReplicas", max_replicas,
                     f"less than minReplicas ({min_replicas}).",
                     f"give maxReplicas of at least {min_replicas}, or lower minReplicas.")
        max_replicas = None

    target = given.get("target")
    if target is not None:
        effective = metric or (CPU if autoscaler in (KSERVE_HPA, KNATIVE_HPA) else CONCURRENCY)
        if effective in (CPU, MEMORY):
            low, high = UTILIZATION_RANGE
            meaning = (f"the average {effective} use per replica in percent of its request "
                       f"(resources.{effective}), from {low} to {high}, e.g. 70")
        elif effective == GPU:
            low, high = UTILIZATION_RANGE
            meaning = (f"the average GPU utilisation per replica in percent, from {low} to "
                       f"{high}, e.g. 70")
        elif effective == RPS:
            low, high = 1, TARGET_MAX
            meaning = "requests per second per replica, e.g. 20"
        else:
            low, high = 1, TARGET_MAX
            meaning = "requests in flight per replica, e.g. 10"
        target = check_int(problems, f"{key}.target", target, None, low, high,
                           f"give {meaning}" + ("" if metric else
                                                f" (no metric given: {effective} is used)") + ".")

    concurrency = given.get("containerConcurrency")
    if concurrency is not None and not serverless:
        problems.add(f"{key}.containerConcurrency", concurrency,
                     f"a hard limit enforced by Knative's queue-proxy; {RAW_DEPLOYMENT} has none, "
                     "and KServe ignores the field there.",
                     f"remove it, or use serving.deploymentMode: {SERVERLESS}.")
        concurrency = None
    concurrency = check_int(problems, f"{key}.containerConcurrency", concurrency, None,
                            0, CONTAINER_CONCURRENCY_MAX,
                            f"give a whole number from 0 (no limit) to {CONTAINER_CONCURRENCY_MAX} "
                            "(Knative's container-concurrency-max-limit), e.g. 4.")

    scaling = Scaling(autoscaler=autoscaler, min_replicas=min_replicas, max_replicas=max_replicas,
                      metric=metric, target=target, container_concurrency=concurrency, key=key)
    if (target is not None and concurrency and scaling.effective_metric == CONCURRENCY
            and target > concurrency):
        problems.warn(f"{key}.target", target,
                      f"above containerConcurrency ({concurrency}): a replica never holds more "
                      "than that many requests, so Knative scales on the lower of the two.",
                      f"give a target of at most {concurrency}.")
    if (metric or target is not None) and not scaling.scales:
        problems.warn(key, raw, "minReplicas and maxReplicas leave the autoscaler no room "
                      + ("(in RawDeployment KServe sets maxReplicas to minReplicas when it is "
                         "not given)" if max_replicas is None else "") + ", so the metric and "
                      "target have no effect.",
                      "give a maxReplicas above minReplicas.")
    return scaling


def check_metrics_api(problems: Problems, models, monitoring_enabled: bool) -> None:
    """HPAs asked to scale need a metrics API; prometheus-adapter (monitoring) serves it."""
    if monitoring_enabled:
        return
    for model in models:
        scaling = model.scaling
        if scaling is None or not scaling.needs_metrics_api:
            continue
        what = {
            (ADAPTER_HPA, RPS): "rps in RawDeployment is scaled by an HPA on the Istio gateway's "
                                "request rate, read from Prometheus through prometheus-adapter",
            (ADAPTER_HPA, GPU): "gpu in RawDeployment is scaled by an HPA on the GPU "
                                "utilisation dcgm-exporter reports, read from Prometheus "
                                "through prometheus-adapter",
            (KNATIVE_HPA, CPU): "cpu in Serverless is scaled by an HPA (Knative's HPA class), "
                                "which reads the resource metrics API (metrics.k8s.io)",
        }.get((scaling.autoscaler, scaling.effective_metric),
              f"{scaling.effective_metric} in RawDeployment is scaled by KServe's HPA, which "
              "reads the resource metrics API (metrics.k8s.io)")
        problems.add(f"{scaling.key}.metric", scaling.metric or scaling.effective_metric,
                     f"{what}; a kubeadm cluster has no metrics API until this project installs "
                     "prometheus-adapter with the monitoring stack.",
                     "set monitoring: {enabled: true} (and the grafanaAdminPassword secret), "
                     "or remove the scaling metric.")


def check_gpu_metric(problems: Problems, models) -> None:
    """`metric: gpu` reads the utilisation of the GPUs the model's pods hold: a model
    without `resources.gpu` holds none, so its HPA would never see a value."""
    for model in models:
        scaling = model.scaling
        if scaling is None or scaling.metric != GPU or getattr(model, "gpu", 0):
            continue
        problems.add(f"{scaling.key}.metric", GPU,
                     "the model has no GPU (resources.gpu): dcgm-exporter reports the "
                     "utilisation of the GPUs a pod holds, so there is nothing to scale on.",
                     "give the model resources.gpu: 1 (or more), or scale on rps, cpu or memory.")


def uses_knative_hpa(serving) -> bool:
    """Whether a model of `serving` (a ServingConfig) needs Knative's HPA extension."""
    return any(m.scaling is not None and m.scaling.autoscaler == KNATIVE_HPA
               for m in serving.models)
