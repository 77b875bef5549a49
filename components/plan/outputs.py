"""What a stack gives its users, read from the evaluated program: the stack
outputs and which of them are secret, each model's endpoint (URL, Host header,
the name its server answers to), the tokens that open it, its scaling, and
Grafana's URL.

Everything here comes from what the program exported and registered under the
mocks, not from a second reading of the stack file, so the plan shows what
`pulumi up` gives. Secret values are read only where their content is the
answer (a token's expiry claim); no secret value is returned.
"""
from __future__ import annotations

import base64
import datetime
import json
from typing import Any, Optional

import pulumi
from pulumi.runtime.sync_await import _sync_await

from components.offline.program import Evaluation, Registration
from components.serving import scaling as sc
from components.serving.v1_protocol import predict_path

KSERVE_CHART = "kserve-chart"
HPA_TYPE = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
ISVC_TYPE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"

# The autoscaler an InferenceService's annotation selects (components/serving/scaling.py).
AUTOSCALER_BY_ANNOTATION = {
    (sc.KNATIVE_CLASS_ANNOTATION, sc.KNATIVE_KPA_CLASS): sc.KNATIVE_KPA,
    (sc.KNATIVE_CLASS_ANNOTATION, sc.KNATIVE_HPA_CLASS): sc.KNATIVE_HPA,
    (sc.KSERVE_AUTOSCALER_CLASS_ANNOTATION, sc.KSERVE_HPA_CLASS): sc.KSERVE_HPA,
    (sc.KSERVE_AUTOSCALER_CLASS_ANNOTATION, sc.KSERVE_EXTERNAL_AUTOSCALER): sc.ADAPTER_HPA,
}
AUTOSCALER_WORDS = {
    sc.KNATIVE_KPA: "Knative's autoscaler (KPA)",
    sc.KNATIVE_HPA: "Knative's HPA class",
    sc.KSERVE_HPA: "KServe's HPA",
    sc.ADAPTER_HPA: "an HPA through prometheus-adapter",
}
TARGETS = {sc.CONCURRENCY: "{} requests in flight per replica",
           sc.RPS: "{} requests/s per replica",
           sc.CPU: "{}% of the cpu request", sc.MEMORY: "{}% of the memory request"}
# KServe's default minReplicas (the pinned release) when the spec gives none.
KSERVE_MIN_REPLICAS = 1


# --- stack outputs ------------------------------------------------------------

def settle(value: Any, path: str = "") -> tuple[Any, set[str]]:
    """An output's plain value and the paths of its secret parts ("" is the whole)."""
    if isinstance(value, pulumi.Output):
        plain, inner = settle(_sync_await(value.future()), path)
        return plain, ({path} if _sync_await(value.is_secret()) else inner)
    if isinstance(value, dict):
        items = [(key, settle(item, f"{path}.{key}" if path else str(key)))
                 for key, item in value.items()]
        return {key: plain for key, (plain, _) in items}, set().union(*(s for _, (_, s) in items))
    if isinstance(value, (list, tuple)):
        items = [settle(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return [plain for plain, _ in items], set().union(*(s for _, s in items))
    return value, set()


def exported(outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """Every stack output, in export order: its name, whether anything in it is
    secret, and which parts are when it is secret only in part."""
    listed = []
    for name, value in outputs.items():
        _, secrets = settle(value)
        whole = "" in secrets
        listed.append({"name": name, "secret": bool(secrets),
                       "secretParts": [] if whole else sorted(secrets)})
    return listed


# --- tokens ---------------------------------------------------------------------

def token_expiry(token: Any) -> Optional[str]:
    """The day a JWT stops working (its `exp`, 00:00 UTC), from the token the program
    minted: only the claim is read, the token itself goes no further."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return datetime.datetime.fromtimestamp(claims["exp"], datetime.timezone.utc).date().isoformat()
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None


def project_tokens(outputs: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Token names (`project/token`) and expiry days by project, from the `tokens` output."""
    by_project: dict[str, list[dict[str, Any]]] = {}
    tokens = outputs.get("tokens") if isinstance(outputs.get("tokens"), dict) else {}
    for key, value in tokens.items():
        plain, _ = settle(value)
        project = key.partition("/")[0]  # keys are token_key(project, token)
        by_project.setdefault(project, []).append({"name": key, "expires": token_expiry(plain)})
    return by_project


# --- scaling --------------------------------------------------------------------

def deployment_mode(evaluation: Evaluation) -> Optional[str]:
    """The mode the KServe controller is installed with (components/serving/kserve.py)."""
    for registration in evaluation.registrations:
        if registration.name == KSERVE_CHART:
            values = registration.inputs.get("values") or {}
            return ((values.get("kserve") or {}).get("controller") or {}).get("deploymentMode")
    return None


def _whole(value: Any) -> Any:
    """Numbers come back from the mock runtime as floats: 4.0 is 4."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _spec_of(registration: Registration) -> tuple[dict, dict]:
    metadata = registration.inputs.get("metadata") or {}
    predictor = (registration.inputs.get("spec") or {}).get("predictor") or {}
    return metadata.get("annotations") or {}, {k: _whole(v) for k, v in predictor.items()}


def scaling_of(annotations: dict, predictor: dict, mode: Optional[str],
               hpa_spec: Optional[dict]) -> dict[str, Any]:
    """Who scales a model, on what, between how many replicas: from the annotations
    and predictor fields its InferenceService gets (and its own requests/s HPA)."""
    autoscaler = next((who for (key, value), who in AUTOSCALER_BY_ANNOTATION.items()
                       if annotations.get(key) == value), None)
    if autoscaler is None:  # no scaling given: KServe's defaults for the mode
        autoscaler = sc.default_autoscaler(mode) if mode else None
    if autoscaler == sc.ADAPTER_HPA and hpa_spec:
        metric = hpa_spec["metrics"][0]["object"]["target"]["averageValue"]
        given = sc.Scaling(autoscaler, _whole(hpa_spec.get("minReplicas")),
                           _whole(hpa_spec.get("maxReplicas")), sc.RPS, int(metric))
    else:
        given = sc.Scaling(autoscaler or "", predictor.get("minReplicas"),
                           predictor.get("maxReplicas"), predictor.get("scaleMetric"),
                           predictor.get("scaleTarget"), predictor.get("containerConcurrency"))
    low = given.min_replicas if given.min_replicas is not None else KSERVE_MIN_REPLICAS
    high = given.max_replicas
    if high is None and autoscaler in (sc.KSERVE_HPA, sc.ADAPTER_HPA):
        high = low  # KServe's raw HPA: max = min when not given
    return {"autoscaler": autoscaler, "metric": given.effective_metric, "target": given.target,
            "minReplicas": low, "maxReplicas": high,  # maxReplicas None: no upper bound
            "containerConcurrency": given.container_concurrency,
            "scales": given.scales}


def scaling_words(scaling: dict[str, Any]) -> str:
    who = AUTOSCALER_WORDS.get(scaling["autoscaler"], "the cluster's default autoscaler")
    target = ("target " + TARGETS.get(scaling["metric"], "{}").format(scaling["target"])
              if scaling["target"] is not None else "the autoscaler's default target")
    low, high = scaling["minReplicas"], scaling["maxReplicas"]
    replicas = (f"{low} replica(s), does not scale" if not scaling["scales"] else
                f"{low} to {high if high is not None else 'any number of'} replicas")
    limit = scaling["containerConcurrency"]
    return (f"{who} on {scaling['metric']}, {target}; {replicas}"
            + (f"; at most {limit} requests in flight per replica" if limit else ""))


def _rollouts(evaluation: Evaluation) -> dict[str, Registration]:
    """The last InferenceService spec of each model (its rollout patch), by `ns/name`."""
    found: dict[str, Registration] = {}
    for registration in evaluation.registrations:
        if registration.type in (ISVC_TYPE, ISVC_TYPE + "Patch"):
            metadata = registration.inputs.get("metadata") or {}
            key = f"{metadata.get('namespace')}/{metadata.get('name')}"
            if registration.type.endswith("Patch") or key not in found:
                found[key] = registration
    return found


def _rps_hpas(evaluation: Evaluation) -> dict[str, dict]:
    """Our requests/s HPAs by the `ns/name` of the model they scale: they target
    KServe's predictor Deployment, `<model>-predictor`."""
    found = {}
    for registration in evaluation.by_type(HPA_TYPE):
        metadata = registration.inputs.get("metadata") or {}
        spec = registration.inputs.get("spec") or {}
        target = (spec.get("scaleTargetRef") or {}).get("name") or ""
        found[f"{metadata.get('namespace')}/{target.removesuffix('-predictor')}"] = spec
    return found


# --- models ---------------------------------------------------------------------

def served_name(url: str) -> Optional[str]:
    """The model name in a V1 predict URL: what the server answers to."""
    before, after = predict_path("\0").split("\0")
    path = "/" + url.partition("://")[2].partition("/")[2]
    if path.startswith(before) and path.endswith(after):
        return path[len(before):len(path) - len(after)]
    return None


def endpoints(evaluation: Evaluation) -> list[dict[str, Any]]:
    """Per model, what a client calls through the ingress and what it needs."""
    models, _ = settle(evaluation.outputs.get("models") or {})
    tokens = project_tokens(evaluation.outputs)
    mode = deployment_mode(evaluation)
    rollouts, hpas = _rollouts(evaluation), _rps_hpas(evaluation)
    listed = []
    for key, entry in models.items():
        annotations, predictor = _spec_of(rollouts[key]) if key in rollouts else ({}, {})
        project = entry.get("project")
        needs = bool(entry.get("needsToken"))
        listed.append({
            "model": key, "name": entry.get("name"), "namespace": entry.get("namespace"),
            "url": entry.get("url"), "host": entry.get("host"),
            "servedName": served_name(entry.get("url") or ""),
            "project": project, "needsToken": needs,
            "tokens": tokens.get(project, []) if needs else [],
            "scaling": scaling_of(annotations, predictor, mode, hpas.get(key)),
            # The Hugging Face runtime's OpenAI-compatible URLs; None for other models.
            "openai": entry.get("openai"),
        })
    return listed


def grafana_url(evaluation: Evaluation) -> Optional[str]:
    url, _ = settle(evaluation.outputs.get("grafanaUrl"))
    return url
