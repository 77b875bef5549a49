"""SSH lab: members' kubeconfigs are issued on the control plane by (the lab's
stand-in for) `kubeadm kubeconfig user`, and carry the member's name (CN) and
projects (O) in a client certificate signed by the cluster's CA.

The stand-in signs with the real CA file that the lab's `kubeadm init` wrote on
the control plane; Kubernetes objects (bindings, policies) stay mocked here.
"""
import base64
import datetime

import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import NameOID

from access_fixtures import resolve
from lab.fixtures import lab_marks, runner_for
from lab.runner import COMMAND

pytestmark = lab_marks

NAMES = ["cp1", "worker1"]


def with_projects(lab, projects):
    config = lab.stack_config(NAMES)
    config["projects"] = projects
    return config


def certificate(kubeconfig_text: str) -> x509.Certificate:
    config = yaml.safe_load(kubeconfig_text)
    [user] = config["users"]
    return x509.load_pem_x509_certificate(base64.b64decode(user["user"]["client-certificate-data"]))


def subject(cert: x509.Certificate) -> tuple[str, set[str]]:
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    orgs = {a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)}
    return cn, orgs


def issued_for(node, member):
    return node.calls_matching("kubeadm", "kubeconfig", "user", member)


def test_member_kubeconfigs_come_from_the_control_plane_with_member_and_projects(lab):
    cp, worker = lab.start(NAMES)
    runner = runner_for(lab)
    projects = [{"name": "team-a", "members": ["alice", "bob"]},
                {"name": "team-b", "members": ["bob"]}]
    evaluation = runner.up(with_projects(lab, projects), lab.key.private_openssh)

    ca = x509.load_pem_x509_certificate(cp.read("/etc/kubernetes/pki/ca.crt").encode())
    kubeconfigs = resolve(evaluation.outputs["memberKubeconfigs"])
    expected = {"alice": {"kserve-cluster:project:team-a"},
                "bob": {"kserve-cluster:project:team-a", "kserve-cluster:project:team-b"}}
    for member, organizations in expected.items():
        assert len(issued_for(cp, member)) == 1, member
        config = yaml.safe_load(kubeconfigs[member])
        assert config["clusters"][0]["cluster"]["server"] == f"https://{cp.address}:6443"
        assert base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]).decode() \
            == cp.read("/etc/kubernetes/pki/ca.crt")
        cert = certificate(kubeconfigs[member])
        assert subject(cert) == (member, organizations)
        # Signed by the cluster CA on the control plane.
        assert cert.issuer == ca.subject
        ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                               cert.signature_hash_algorithm)
        lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
        assert datetime.timedelta(days=90) <= lifetime <= datetime.timedelta(days=90, minutes=10)
    assert worker.calls_matching("kubeadm", "kubeconfig") == []
    # The kubeconfig never shows in the transcript, and no copy stays on the node.
    runs = [r for r in runner.transcript if r.resource.startswith("member-kubeconfig-")]
    assert len(runs) == 2 and all(r.stdout == "[secret]" for r in runs)
    key_line = yaml.safe_load(kubeconfigs["bob"])["users"][0]["user"]["client-key-data"][:40]
    assert cp.private_files_containing(key_line) == []

    # Another run with the same stack file issues nothing.
    before = len(cp.calls("kubeadm"))
    runner.up(with_projects(lab, projects), lab.key.private_openssh)
    assert len(cp.calls("kubeadm")) == before
    assert not [r for r in runner.last_run if r.resource.startswith("member-kubeconfig-")]

    # bob leaves team-b: his kubeconfig alone is issued again, naming team-a only.
    projects[1]["members"] = []
    evaluation = runner.up(with_projects(lab, projects), lab.key.private_openssh)
    assert len(issued_for(cp, "bob")) == 2 and len(issued_for(cp, "alice")) == 1
    bob = resolve(evaluation.outputs["memberKubeconfigs"])["bob"]
    assert subject(certificate(bob)) == ("bob", {"kserve-cluster:project:team-a"})

    # alice is removed: nothing runs for her (a certificate cannot be revoked), her
    # kubeconfig leaves the outputs and the state.
    projects[0]["members"] = ["bob"]
    evaluation = runner.up(with_projects(lab, projects), lab.key.private_openssh)
    assert len(issued_for(cp, "alice")) == 1
    assert set(resolve(evaluation.outputs["memberKubeconfigs"])) == {"bob"}
    assert (COMMAND, "member-kubeconfig-alice") not in runner.state
