"""Issue 17 section 3: certificates that renew.

The two settings and their checks, kubeadm's certificateValidityPeriod and the
kubelet's rotateCertificates, reading `kubeadm certs check-expiration -o json`,
the preflight column, and the renewal timer in the program's graph."""
import base64
import copy
import datetime
import json

import pytest
import yaml

from components.cluster import certificates
from components.cluster.certificates import CertificateSettings
from components.cluster.cert_renewal import kubeconfig_read_triggers, program_digest, read_period_days
from components.cluster.kubeadm_config import render_init_config
from components.cluster.node_scripts import script_text
from components.offline.graph import Graph
from components.offline.program import HEALTHY_NODE_FACTS, evaluate
from components.plan.build import build_plan
from components.preflight.checks import PASS, WARN, evaluate as preflight, parse_facts
from components.stack_config import ConfigError, Node, parse_stack_config

RAW = {
    "nodes": [
        {"name": "cp1", "address": "10.0.2.21", "role": "control-plane"},
        {"name": "worker1", "address": "10.0.2.22", "role": "worker"},
    ],
    "ssh": {"user": "ubuntu"},
}


def with_kubernetes(**keys):
    raw = copy.deepcopy(RAW)
    raw["kubernetes"] = keys
    return raw


def parsed(**keys):
    return parse_stack_config(with_kubernetes(**keys), has_secret_private_key=True)


def problems(**keys):
    with pytest.raises(ConfigError) as caught:
        parsed(**keys)
    return caught.value.problems


# ---------------------------------------------------------------- settings

def test_defaults_are_kubeadms_year_and_thirty_days():
    settings = parsed().kubernetes.certificates
    assert (settings.validity_days, settings.renew_before_days) == (365, 30)
    assert settings.validity_period == "8760h0m0s"


def test_settings_are_read():
    settings = parsed(certificateValidityDays=90, renewCertificatesBeforeDays=10).kubernetes.certificates
    assert (settings.validity_days, settings.renew_before_days) == (90, 10)
    assert settings.validity_period == "2160h0m0s"


@pytest.mark.parametrize("value,words", [
    ("365", "not a whole number"), (36.5, "not a whole number"), (True, "not a whole number"),
    (1, "outside the range 2-3650"), (0, "outside the range"), (3651, "outside the range 2-3650"),
])
def test_validity_must_be_whole_days_in_range(value, words):
    [problem] = problems(certificateValidityDays=value)
    assert problem.startswith(f"kserve-cluster:kubernetes.certificateValidityDays = {value!r}: ")
    assert words in problem and "Fix: give whole days from 2 to 3650" in problem


@pytest.mark.parametrize("value", ["30", 0, -1, 2.5])
def test_renew_before_must_be_whole_days_from_one(value):
    [problem] = problems(renewCertificatesBeforeDays=value)
    assert problem.startswith(f"kserve-cluster:kubernetes.renewCertificatesBeforeDays = {value!r}: ")
    assert "Fix: give whole days, at least 1" in problem


@pytest.mark.parametrize("validity,renew", [(30, 30), (30, 45), (365, 365)])
def test_renew_before_must_be_below_the_validity(validity, renew):
    [problem] = problems(certificateValidityDays=validity, renewCertificatesBeforeDays=renew)
    assert problem.startswith(f"kserve-cluster:kubernetes.renewCertificatesBeforeDays = {renew}: ")
    assert f"not below kubernetes.certificateValidityDays ({validity})" in problem
    assert f"Fix: use fewer days than {validity}" in problem


def test_renew_before_default_against_a_short_validity_is_refused():
    # 20 days of life and the default 30 days of warning: the key to change is named.
    [problem] = problems(certificateValidityDays=20)
    assert "renewCertificatesBeforeDays = 30" in problem and "(20)" in problem


def test_more_than_kubeadms_recommended_year_warns_but_runs():
    config = parsed(certificateValidityDays=730)
    assert config.kubernetes.certificates.validity_days == 730
    [warning] = [w for w in config.warnings if "certificateValidityDays" in w]
    assert "730" in warning and "recommended 365 days" in warning
    assert not [w for w in parsed(certificateValidityDays=365).warnings if "certificateValidity" in w]


# ---------------------------------------------------------------- kubeadm documents

def documents(config):
    return {d["kind"]: d for d in yaml.safe_load_all(
        render_init_config(config.control_plane, config.kubernetes))}


def test_cluster_configuration_carries_the_validity_and_leaves_the_ca_alone():
    cluster = documents(parsed(certificateValidityDays=90))["ClusterConfiguration"]
    assert cluster["certificateValidityPeriod"] == "2160h0m0s"
    assert "caCertificateValidityPeriod" not in cluster
    assert documents(parsed())["ClusterConfiguration"]["certificateValidityPeriod"] == "8760h0m0s"


def test_kubelet_rotates_its_client_certificate():
    assert documents(parsed())["KubeletConfiguration"]["rotateCertificates"] is True


# ---------------------------------------------------------------- check-expiration

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)


def cert(name, days, **extra):
    when = NOW + datetime.timedelta(days=days)
    return {"name": name, "expirationDate": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "residualTime": int(days * 86400), "externallyManaged": False, "missing": False,
            **extra}


def expiration(certs, cas=None):
    """Shaped like kubeadm's CertificateExpirationInfo (output.kubeadm.k8s.io/v1alpha3)."""
    return {"kind": "CertificateExpirationInfo", "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
            "certificates": certs,
            "certificateAuthorities": [cert("ca", 3600), cert("etcd-ca", 3600)] if cas is None else cas}


def fact(document):
    return base64.b64encode(json.dumps(document, indent=4).encode()).decode()


def test_earliest_expiry_skips_missing_and_external_certificates():
    document = expiration([
        cert("admin.conf", 300, caName="ca"),
        cert("apiserver", 200, caName="ca"),
        {"name": "super-admin.conf", "expirationDate": None, "residualTime": 0, "missing": True},
        cert("front-proxy-client", 5, externallyManaged=True),
    ])
    expiry = certificates.earliest_expiry(document)
    assert (expiry.name, expiry.date) == ("apiserver", "2026-12-18")
    assert round(expiry.days_left) == 200


def test_a_ca_that_expires_first_is_the_earliest():
    expiry = certificates.earliest_expiry(expiration([cert("apiserver", 300)], [cert("ca", 10)]))
    assert expiry.name == "ca"


@pytest.mark.parametrize("value,state", [
    ("", "none"), ("none", "none"), ("needs-root", "needs-root"), ("unreadable", "unreadable"),
    ("not base64!", "unreadable"), (base64.b64encode(b"[certs] no json").decode(), "unreadable"),
    (base64.b64encode(json.dumps(expiration([], [])).encode()).decode(), "unreadable"),
])
def test_expiration_fact_states(value, state):
    assert certificates.decode_expiration_fact(value) == (state, None)


def test_expiration_fact_is_kubeadms_json_in_base64():
    state, expiry = certificates.decode_expiration_fact(fact(expiration([cert("apiserver", 100)])))
    assert state == "ok" and expiry.name == "apiserver"


@pytest.mark.parametrize("days,renew,warn,words", [
    (100, 30, False, "earliest certificate expiry"),
    (29, 30, True, "under kubernetes.renewCertificatesBeforeDays (30)"),
    (40, 45, True, "under kubernetes.renewCertificatesBeforeDays (45)"),
    (-1, 30, True, "EXPIRED"),
])
def test_verdict_warns_under_the_renew_before_setting(days, renew, warn, words):
    expiry = certificates.earliest_expiry(expiration([cert("apiserver", days)]))
    got_warn, message = certificates.expiry_verdict(expiry, renew)
    assert got_warn is warn and words in message


# ---------------------------------------------------------------- preflight column

CP = Node("cp1", "10.0.2.21", "control-plane")
W1 = Node("worker1", "10.0.2.22", "worker")


def node_facts(name, **changes):
    facts = parse_facts(HEALTHY_NODE_FACTS)
    facts.update(hostname=name, product_uuid=f"uuid-{name}", macs=f"mac-{name}", **changes)
    return "\n".join(f"{k}={v}" for k, v in facts.items())


def certs_result(cert_expiration, renew_before_days=30, node="cp1"):
    report = preflight([CP, W1], {"cp1": node_facts("cp1", cert_expiration=cert_expiration),
                                  "worker1": node_facts("worker1", cert_expiration="none")},
                       renew_before_days=renew_before_days)
    return next(n for n in report.nodes if n.node == node).results.get("certs"), report


def soon(days):
    return fact(expiration([cert("apiserver", days), cert("admin.conf", days + 5)]))


def test_preflight_shows_the_earliest_expiry_and_passes_when_far():
    result, report = certs_result(soon(200))
    assert result.status == PASS and result.detail == result.message.split()[3]
    assert "certs" in report.table().splitlines()[0]


def test_preflight_warns_under_renew_before_days():
    result, report = certs_result(soon(20))
    assert result.status == WARN and "apiserver" in result.message
    assert not report.failed
    result, _ = certs_result(soon(20), renew_before_days=10)
    assert result.status == PASS


def test_preflight_on_a_node_with_no_cluster_shows_nothing_to_check():
    result, _ = certs_result("none")
    assert (result.status, result.detail) == (PASS, "none")


def test_preflight_without_root_reports_unknown():
    result, _ = certs_result("needs-root")
    assert (result.status, result.detail) == (WARN, "unknown") and "root" in result.message


def test_workers_have_no_certs_check():
    result, _ = certs_result(soon(1), node="worker1")
    assert result is None


def test_facts_script_reads_expiry_with_sudo_n_and_base64():
    text = script_text("preflight-facts.sh")
    assert "as_root timeout 60 kubeadm certs check-expiration -o json | base64 -w0" in text
    assert "cert_expiration=needs-root" in text


# ---------------------------------------------------------------- the program

@pytest.fixture(scope="module")
def program():
    raw = with_kubernetes(certificateValidityDays=90, renewCertificatesBeforeDays=12)
    evaluation = evaluate(raw)
    return evaluation, Graph(evaluation)


def test_renewal_timer_is_installed_after_init_and_removed_on_delete(program):
    evaluation, graph = program
    renewal = evaluation.named("cp1-cert-renewal")
    assert graph.waits_for("cp1-cert-renewal", "cp1-kubeadm-init")
    assert "cert-renewal.sh" in renewal.inputs["create"]
    assert "RENEW_BEFORE_DAYS=12" in renewal.inputs["create"]
    assert "LOGIN_USER=ubuntu" in renewal.inputs["create"]
    assert "cert-renewal-remove.sh" in renewal.inputs["delete"]
    assert renewal.inputs["stdin"] == script_text("cert-renew.sh")
    assert renewal.delete_before_replace
    assert not any(r.name.endswith("-cert-renewal") and r.name != "cp1-cert-renewal"
                   for r in evaluation.commands())


def test_renewal_triggers_on_init_program_and_setting(program):
    evaluation, _ = program
    triggers = evaluation.named("cp1-cert-renewal").inputs["triggers"]
    assert program_digest() in triggers and "12" in triggers
    assert len(triggers) == 3  # and the init command's id


def test_admin_kubeconfig_is_read_again_each_half_renewal_window():
    settings = CertificateSettings(validity_days=365, renew_before_days=30)
    assert read_period_days(settings) == 15
    first = datetime.date(2027, 3, 4)
    start = kubeconfig_read_triggers("init-id", settings, first)
    # The same trigger for the whole period, a new one the day the next begins.
    period = [kubeconfig_read_triggers("init-id", settings, first + datetime.timedelta(days=d))
              for d in range(-20, 21)]
    changes = sum(1 for a, b in zip(period, period[1:]) if a != b)
    assert changes in (2, 3) and start in period
    assert start[0] == "init-id" and start[1].startswith("read in the 15-day period from ")
    # Within the old certificate's remaining validity (the renew-before window).
    assert read_period_days(settings) < settings.renew_before_days
    assert read_period_days(CertificateSettings(validity_days=2, renew_before_days=1)) == 1


def test_admin_kubeconfig_read_carries_this_periods_trigger(program):
    evaluation, _ = program
    triggers = evaluation.named("cp1-admin-kubeconfig").inputs["triggers"]
    today = datetime.datetime.now(datetime.timezone.utc).date()
    assert kubeconfig_read_triggers("x", CertificateSettings(90, 12), today)[1] in triggers


def test_the_plan_describes_the_timer(program):
    evaluation, _ = program
    raw = with_kubernetes(certificateValidityDays=90, renewCertificatesBeforeDays=12)
    plan = build_plan("test", raw, evaluation)
    [step] = [s for s in plan.steps.values() if s.name == "cp1-cert-renewal"]
    assert "fewer than 12 days" in step.summary and "scripts/preflight.py" in step.summary
    assert step.details["onDestroy"] == "cert-renewal-remove.sh"
