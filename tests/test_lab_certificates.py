"""SSH lab: day 365 comes early. The lab's kubeadm issues real certificates for the
stack's certificateValidityDays (two days here), answers `kubeadm certs
check-expiration -o json` in kubeadm's output shape and re-issues them from the
lab's CAs on `kubeadm certs renew all` (tests/lab/standins/certs.py). The renewal
program the program installs (`<cp>-cert-renewal`, scripts/node/cert-renew.sh)
runs as its timer runs it: nothing far from expiry; a renewal, a restart of the
control-plane static pods and a fresh admin.conf once a certificate has fewer than
renewCertificatesBeforeDays left."""
import json

from components.cluster.certificates import earliest_expiry
from lab import etcd
from lab.fixtures import lab_marks
from lab.runner import lab_runner

pytestmark = lab_marks

PROGRAM = "/usr/local/sbin/kserve-cert-renew"
UNIT = "/etc/systemd/system/kserve-cert-renewal.service"
MANIFESTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")


def run_as_the_timer(node):
    """The unit's ExecStart with its Environment= lines and nothing else (the kubelet's
    20 s manifest check shortened: the lab's kubelet acts at once)."""
    env = " ".join(line.split("=", 1)[1] for line in node.read(UNIT).splitlines()
                   if line.startswith("Environment="))
    return node.run(f"env -i PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin {env} "
                    f"STOP_WAIT_SECONDS=1 {PROGRAM}", check=False, timeout=600)


def expiration(node) -> dict:
    return json.loads(node.run("kubeadm certs check-expiration -o json").stdout)


def test_short_lived_certificates_are_left_alone_then_renewed_near_expiry(lab):
    [cp] = lab.start(["cp1"])
    runner = lab_runner(lab, also_run=frozenset({"cert-renewal.sh"}))
    config = lab.stack_config()
    config["kubernetes"] = {"certificateValidityDays": 2, "renewCertificatesBeforeDays": 1}
    runner.up(config, lab.key.private_openssh)
    assert "Environment=RENEW_BEFORE_DAYS=1" in cp.read(UNIT)

    # kubeadm's view, in its output API: two-day certificates, ten-year CAs.
    document = expiration(cp)
    assert (document["kind"], document["apiVersion"]) == \
        ("CertificateExpirationInfo", "output.kubeadm.k8s.io/v1alpha3")
    present = {c["name"]: c for c in document["certificates"] if not c["missing"]}
    assert {"admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf",
            "etcd-server", "etcd-peer", "etcd-healthcheck-client", "apiserver-etcd-client"} <= set(present)
    for cert in present.values():
        assert 86400 < cert["residualTime"] <= 2 * 86400, cert
    assert {c["name"] for c in document["certificateAuthorities"] if not c["missing"]} >= {"ca", "etcd-ca"}
    first = earliest_expiry(document)
    assert 1 < first.days_left <= 2

    # Far from expiry (more than one day left): the timer's run does nothing.
    admin_before = cp.read("/etc/kubernetes/admin.conf")
    quiet = run_as_the_timer(cp)
    assert quiet.returncode == 0, quiet.stderr
    assert "nothing to renew: every certificate has more than 1 days left" in quiet.stdout
    assert not cp.calls_matching("kubeadm", "certs", "renew")
    assert cp.read("/etc/kubernetes/admin.conf") == admin_before

    # A day and a half later, as far as admin.conf's certificate knows: 12 hours left.
    cp.run(f"LAB_STANDINS={lab.dir / 'standins'} {etcd._node_python(cp)} "
           f"{lab.dir / 'standins' / 'standin.py'} certs-plant admin.conf 12h")
    assert earliest_expiry(expiration(cp)).name == "admin.conf"
    assert earliest_expiry(expiration(cp)).days_left < 1
    starts = len(cp.read("/var/lib/lab/etcd/starts").split())

    renewed = run_as_the_timer(cp)
    assert renewed.returncode == 0, renewed.stdout + renewed.stderr
    assert "renewing: /etc/kubernetes/admin.conf expires" in renewed.stdout
    [renew] = cp.calls_matching("kubeadm", "certs", "renew", "all")
    assert renew.args[-2:] == ["--config", "/etc/kubernetes/kubeadm-init.yaml"]
    # Every certificate is new, for the configured two days, from the same CAs.
    after = expiration(cp)
    for cert in after["certificates"]:
        if not cert["missing"]:
            assert cert["residualTime"] > 2 * 86400 - 600, cert
    # kubeadm does not renew the CAs.
    assert [a["expirationDate"] for a in after["certificateAuthorities"]] == \
        [a["expirationDate"] for a in document["certificateAuthorities"]]
    # The static pods were restarted (manifests out and back): etcd ran again, every
    # manifest is in place, the API answers with the renewed admin.conf.
    assert "restarting the static pods: etcd kube-apiserver kube-controller-manager kube-scheduler" \
        in renewed.stdout
    assert len(cp.read("/var/lib/lab/etcd/starts").split()) > starts
    assert etcd.running(cp)
    for name in MANIFESTS:
        assert cp.exists(f"/etc/kubernetes/manifests/{name}.yaml"), name
    assert not cp.exists("/etc/kubernetes/manifests-renewing")
    admin = cp.read("/etc/kubernetes/admin.conf")
    assert admin != admin_before
    assert cp.run("kubectl --kubeconfig /etc/kubernetes/admin.conf get --raw /readyz").stdout.strip() == "ok"
    # The login user's copy is the renewed one.
    assert cp.read(f"/home/{lab.user}/.kube/config") == admin

    # Renewed: the next run of the timer has nothing to do.
    again = run_as_the_timer(cp)
    assert "nothing to renew" in again.stdout
    assert len(cp.calls_matching("kubeadm", "certs", "renew", "all")) == 1
