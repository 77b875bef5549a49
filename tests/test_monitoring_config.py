"""`monitoring` and `grafanaAdminPassword`: one test per rule; the password is never echoed."""
import pytest

from components.monitoring.config import DEFAULT_GRAFANA_NODE_PORT, DEFAULT_RETENTION
from components.problems import ConfigError
from components.stack_config import parse_stack_config

NODES = [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}]
PASSWORD = "correct-horse-battery"


def parse(monitoring=None, password=PASSWORD, secret=True, **extra):
    raw = {"nodes": NODES, **extra}
    if monitoring is not None:
        raw["monitoring"] = monitoring
    if password is not None:
        raw["grafanaAdminPassword"] = password
    return parse_stack_config(raw, has_secret_private_key=True,
                              secret_keys=frozenset({"grafanaAdminPassword"} if secret else ()))


def problems(*args, **kwargs):
    with pytest.raises(ConfigError) as caught:
        parse(*args, **kwargs)
    return caught.value.problems


def test_off_unless_enabled():
    config = parse(password=None)
    assert not config.monitoring.enabled
    assert (config.monitoring.grafana_node_port, config.monitoring.retention) == \
        (DEFAULT_GRAFANA_NODE_PORT, DEFAULT_RETENTION)


def test_enabled_with_settings():
    config = parse({"enabled": True, "grafanaNodePort": 30400, "retention": "12h"})
    assert (config.monitoring.enabled, config.monitoring.grafana_node_port,
            config.monitoring.retention) == (True, 30400, "12h")


def test_default_grafana_port_is_not_the_default_ingress_port():
    assert DEFAULT_GRAFANA_NODE_PORT != parse().serving.ingress_node_port


def test_unknown_key():
    [line] = problems({"enabled": True, "grafanaPort": 30300})
    assert line.startswith("kserve-cluster:monitoring.grafanaPort ") and "grafanaNodePort" in line


def test_enabled_must_be_a_boolean():
    [line] = problems({"enabled": "yes"})
    assert "monitoring.enabled = 'yes': must be true or false" in line


@pytest.mark.parametrize("port,what", [(80, "outside the range 30000-32767"),
                                       ("30300", "not a whole number")])
def test_grafana_node_port_range(port, what):
    [line] = problems({"enabled": True, "grafanaNodePort": port})
    assert "monitoring.grafanaNodePort" in line and what in line


def test_grafana_node_port_must_not_clash_with_the_ingress():
    [line] = problems({"enabled": True, "grafanaNodePort": 31000},
                      serving={"ingressNodePort": 31000})
    assert "the Istio ingress gateway already has this node port" in line


@pytest.mark.parametrize("retention", ["3 days", "", 5, "0"])
def test_retention_is_a_prometheus_duration(retention):
    [line] = problems({"enabled": True, "retention": retention})
    assert line.startswith("kserve-cluster:monitoring.retention ")


def test_password_required_when_enabled():
    [line] = problems({"enabled": True}, password=None)
    assert "grafanaAdminPassword = (not set): required." in line
    assert "pulumi config set --secret grafanaAdminPassword" in line


def test_password_in_plain_text_is_refused_and_not_shown():
    [line] = problems({"enabled": True}, secret=False)
    assert "set in plain text" in line and PASSWORD not in line


def test_short_password_is_refused_and_not_shown():
    [line] = problems({"enabled": True}, password="abc12")
    assert "shorter than 8 characters" in line and "abc12" not in line


def test_encrypted_value_from_a_stack_file_is_not_measured():
    config = parse({"enabled": True}, password={"secure": "v1:AAAA"})
    assert config.monitoring.enabled


def test_password_without_monitoring_is_a_warning_only():
    config = parse(None)
    [warning] = config.warnings
    assert "set, but monitoring is not enabled" in warning and PASSWORD not in warning


def test_monitoring_and_model_problems_reported_together():
    # Every problem at once: monitoring and model problems in one report.
    found = problems({"enabled": True, "retention": "x"}, password=None,
                     models=[{"name": "m", "namespace": "ns", "format": "sklearn",
                              "storageUri": "gs://a/b", "scaling": {"metric": "cpus"}}])
    assert len(found) == 3


def test_the_monitoring_namespace_is_not_for_models():
    [line] = problems({"enabled": True}, models=[{"name": "m", "namespace": "monitoring",
                                                  "format": "sklearn", "storageUri": "gs://a/b"}])
    assert line.startswith("kserve-cluster:models[0] (m).namespace = 'monitoring': ")
    assert "the monitoring stack creates it" in line
