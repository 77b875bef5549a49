"""Stack config of the monitoring stack: `monitoring` and the Grafana password (pure).

    monitoring: {enabled: true, grafanaNodePort: 30300, retention: 3d}
    pulumi config set --secret grafanaAdminPassword      # required when enabled

The admin password is a secret the user sets: two evaluations give the same
value, it is never written in plain text (a plain value is refused), and the
program reads it as a secret Output (`pulumi.Config.require_secret`), so the
parsed config never holds it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from components.problems import Problems, check_bool, check_int, check_mapping
from components.serving.config import NODE_PORT_RANGE, ServingConfig
from components.serving.scaling import check_gpu_metric, check_metrics_api

MONITORING_KEYS = {"enabled", "grafanaNodePort", "retention"}
GRAFANA_PASSWORD_KEY = "grafanaAdminPassword"
DEFAULT_GRAFANA_NODE_PORT = 30300
# Prometheus keeps its data in an emptyDir (a lab has no storage class for it):
# days, not the chart's 10d, so that the node's disk and the pod's memory stay small.
DEFAULT_RETENTION = "3d"
MIN_PASSWORD_LENGTH = 8
# Prometheus' duration format, as the Prometheus CRD's `retention` pattern has it.
_DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?"
                       r"(([0-9]+)s)?(([0-9]+)ms)?)$")
HIDDEN = "(not shown)"


@dataclass(frozen=True)
class MonitoringConfig:
    enabled: bool = False
    grafana_node_port: int = DEFAULT_GRAFANA_NODE_PORT
    retention: str = DEFAULT_RETENTION


def parse_monitoring(problems: Problems, raw: Any, password: Any, secret_keys: frozenset[str],
                     serving: ServingConfig) -> MonitoringConfig:
    """`monitoring` and `grafanaAdminPassword`; also checks that every model
    whose scaling reads a metrics API has one (prometheus-adapter comes with it),
    and that a model scaling on GPU use has GPUs."""
    given = check_mapping(problems, "monitoring", raw,
                          "give {enabled: true, grafanaNodePort: 30300, retention: 3d}.")
    problems.unknown_keys("monitoring", given, MONITORING_KEYS)
    enabled = check_bool(problems, "monitoring.enabled", given.get("enabled"), False,
                         "write enabled: true to install Prometheus and Grafana.")
    low, high = NODE_PORT_RANGE
    port = check_int(problems, "monitoring.grafanaNodePort", given.get("grafanaNodePort"),
                     DEFAULT_GRAFANA_NODE_PORT, low, high,
                     f"pick a free node port, a whole number from {low} to {high}, "
                     f"e.g. {DEFAULT_GRAFANA_NODE_PORT}.")
    # The HTTP port's message wins should the two ever be one (serving refuses that).
    taken = {serving.https_node_port: "the Istio ingress gateway's HTTPS port already has this "
                                      "node port (serving.httpsNodePort).",
             serving.ingress_node_port: "the Istio ingress gateway already has this node port "
                                        "(serving.ingressNodePort)."}
    if port in taken:
        problems.add("monitoring.grafanaNodePort", port, taken[port],
                     f"pick another, e.g. {DEFAULT_GRAFANA_NODE_PORT}"
                     if port != DEFAULT_GRAFANA_NODE_PORT else "pick another, e.g. 30301.")
    retention = given.get("retention", DEFAULT_RETENTION)
    if not isinstance(retention, str) or not retention or not _DURATION.match(retention):
        problems.add("monitoring.retention", retention, "not a Prometheus duration.",
                     "give a number and a unit (ms, s, m, h, d, w, y), e.g. 3d or 12h.")
        retention = DEFAULT_RETENTION
    elif retention == "0":
        problems.add("monitoring.retention", retention, "keeps no data.",
                     "give how long to keep metrics, e.g. 3d.")
        retention = DEFAULT_RETENTION

    secret = GRAFANA_PASSWORD_KEY in secret_keys
    if enabled and password is None:
        problems.required(GRAFANA_PASSWORD_KEY,
                          f"run `pulumi config set --secret {GRAFANA_PASSWORD_KEY}` (it asks for "
                          "the value) to choose Grafana's admin password.")
    elif password is not None and not secret:
        # Never echo the value back.
        problems.add(GRAFANA_PASSWORD_KEY, HIDDEN,
                     "set in plain text; it would sit unencrypted in the stack file.",
                     f"remove it from the stack file and set it with "
                     f"`pulumi config set --secret {GRAFANA_PASSWORD_KEY}`.")
    elif password is not None and not isinstance(password, dict) and \
            len(str(password)) < MIN_PASSWORD_LENGTH:
        # (A value read from the stack file without the CLI is `{secure: ...}`: not checked.)
        problems.add(GRAFANA_PASSWORD_KEY, HIDDEN,
                     f"shorter than {MIN_PASSWORD_LENGTH} characters; Grafana is reachable "
                     "from the nodes' network.",
                     f"set a longer one with `pulumi config set --secret {GRAFANA_PASSWORD_KEY}`.")
    if password is not None and not enabled:
        problems.warn(GRAFANA_PASSWORD_KEY, HIDDEN, "set, but monitoring is not enabled.",
                      "set monitoring: {enabled: true}, or remove the key.")
    check_metrics_api(problems, serving.models, enabled)
    check_gpu_metric(problems, serving.models)
    return MonitoringConfig(enabled=enabled, grafana_node_port=port, retention=retention)
