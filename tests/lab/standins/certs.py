"""`kubeadm certs check-expiration` and `kubeadm certs renew all` on a lab control plane.

Runs inside a node (imported by impl.py). The lab's certificates are real X.509
certificates signed by the lab's real CAs (kubeadm init in impl.py, etcd in
etcd_member.py), so expiry is read from them and renewal re-issues them:
- check-expiration lists what kubeadm 1.31 lists (cmd/kubeadm/app/phases/certs/
  renewal: the leaf certificates and the client certificates inside the kubeconfig
  files, then the CAs), with `-o json` as kubeadm's output API prints it
  (output.kubeadm.k8s.io/v1alpha3 CertificateExpirationInfo: name, expirationDate
  in RFC 3339, residualTime in seconds, externallyManaged, caName, missing). A file
  the lab does not make (front-proxy, apiserver serving) is reported missing, as
  kubeadm reports a missing file.
- renew all re-issues every certificate that is there, with the same subject, names
  and usages, a new key, signed by its CA, valid for the ClusterConfiguration's
  certificateValidityPeriod (from --config, else one year), as kubeadm does; the
  CAs are not renewed. Like kubeadm it restarts nothing.
- `plant` (for the harness): re-issue one certificate so that it has only the given
  time left, as if the cluster had run that long.
"""
from __future__ import annotations

import base64
import datetime
import json
import sys
from pathlib import Path

KUBE = Path("/etc/kubernetes")
PKI = KUBE / "pki"
# (name, file, CA) in kubeadm's order; a .conf is a kubeconfig with an embedded client certificate.
CERTIFICATES = [
    ("admin.conf", KUBE / "admin.conf", "ca"),
    ("apiserver", PKI / "apiserver.crt", "ca"),
    ("apiserver-etcd-client", PKI / "apiserver-etcd-client.crt", "etcd-ca"),
    ("apiserver-kubelet-client", PKI / "apiserver-kubelet-client.crt", "ca"),
    ("controller-manager.conf", KUBE / "controller-manager.conf", "ca"),
    ("etcd-healthcheck-client", PKI / "etcd" / "healthcheck-client.crt", "etcd-ca"),
    ("etcd-peer", PKI / "etcd" / "peer.crt", "etcd-ca"),
    ("etcd-server", PKI / "etcd" / "server.crt", "etcd-ca"),
    ("front-proxy-client", PKI / "front-proxy-client.crt", "front-proxy-ca"),
    ("scheduler.conf", KUBE / "scheduler.conf", "ca"),
    ("super-admin.conf", KUBE / "super-admin.conf", "ca"),
]
AUTHORITIES = {"ca": PKI / "ca", "etcd-ca": PKI / "etcd" / "ca", "front-proxy-ca": PKI / "front-proxy-ca"}
DEFAULT_VALIDITY = datetime.timedelta(days=365)


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    sys.exit(1)


def _load(path: Path):
    """(certificate, kubeconfig document or None), or (None, None) when missing."""
    from cryptography import x509
    if not path.exists():
        return None, None
    if path.suffix == ".conf":
        import yaml
        config = yaml.safe_load(path.read_text())
        data = config["users"][0]["user"].get("client-certificate-data")
        if not data:
            return None, config
        return x509.load_pem_x509_certificate(base64.b64decode(data)), config
    return x509.load_pem_x509_certificate(path.read_bytes()), None


def _not_after(cert) -> datetime.datetime:
    """not_valid_after_utc where cryptography has it (42+), else the naive UTC value."""
    utc = getattr(cert, "not_valid_after_utc", None)
    return utc if utc is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def _entry(name: str, path: Path, ca: str, now: datetime.datetime) -> dict:
    cert, _ = _load(path)
    entry = {"name": name, "expirationDate": None, "residualTime": 0, "externallyManaged": False}
    if ca:
        entry["caName"] = ca
    if cert is None:
        entry["missing"] = True
        return entry
    expires = _not_after(cert)
    entry.update({"expirationDate": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "residualTime": max(0, int((expires - now).total_seconds())), "missing": False})
    return entry


def check_expiration(output: str) -> None:
    if not (KUBE / "manifests").exists() and not (PKI / "ca.crt").exists():
        fail("error execution phase: failed to load the kubeadm configuration: no control plane here")
    now = datetime.datetime.now(datetime.timezone.utc)
    certificates = [_entry(n, p, ca, now) for n, p, ca in CERTIFICATES]
    authorities = [_entry(n, Path(f"{p}.crt"), "", now) for n, p in AUTHORITIES.items()]
    if output == "json":
        print(json.dumps({"kind": "CertificateExpirationInfo",
                          "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
                          "certificates": certificates,
                          "certificateAuthorities": authorities}, indent=4))
        return
    if output:
        fail(f'error: unable to match a printer suitable for the output format "{output}", '
             "allowed formats are: json,jsonpath,jsonpath-as-json,jsonpath-file,text,yaml")
    print("CERTIFICATE                EXPIRES                  RESIDUAL TIME   CERTIFICATE AUTHORITY   EXTERNALLY MANAGED")
    for entry in certificates:
        if entry["missing"]:
            print(f"!MISSING! {entry['name']}")
            continue
        print(f"{entry['name']:<26} {entry['expirationDate']:<24} {entry['residualTime'] // 86400}d"
              f"{'':<13} {entry['caName']:<23} no")


def _reissue(path: Path, ca: str, valid_for: datetime.timedelta) -> None:
    """The certificate at `path` again: same subject and extensions, a new key, `valid_for`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    old, config = _load(path)
    ca_base = AUTHORITIES[ca]
    ca_cert = x509.load_pem_x509_certificate(Path(f"{ca_base}.crt").read_bytes())
    ca_key = serialization.load_pem_private_key(Path(f"{ca_base}.key").read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(old.subject).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + valid_for))
    for extension in old.extensions:
        if extension.oid in (x509.oid.ExtensionOID.SUBJECT_KEY_IDENTIFIER,
                             x509.oid.ExtensionOID.AUTHORITY_KEY_IDENTIFIER):
            continue
        builder = builder.add_extension(extension.value, extension.critical)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    if config is not None:
        import yaml
        user = config["users"][0]["user"]
        user["client-certificate-data"] = base64.b64encode(cert_pem).decode()
        user["client-key-data"] = base64.b64encode(key_pem).decode()
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    else:
        path.write_bytes(cert_pem)
        path.with_suffix(".key").write_bytes(key_pem)
    path.chmod(0o600 if config is not None else 0o644)


def validity_from(config_path: str) -> datetime.timedelta:
    """certificateValidityPeriod of the ClusterConfiguration in --config (kubeadm's
    Go duration), else kubeadm's default year."""
    if not config_path:
        return DEFAULT_VALIDITY
    import yaml
    from impl import parse_duration
    for document in yaml.safe_load_all(Path(config_path).read_text()):
        if document and document.get("kind") == "ClusterConfiguration" \
                and document.get("certificateValidityPeriod"):
            return datetime.timedelta(seconds=parse_duration(str(document["certificateValidityPeriod"])))
    return DEFAULT_VALIDITY


def renew_all(config_path: str) -> None:
    import os
    if os.geteuid() != 0:
        fail("[ERROR IsPrivilegedUser]: user is not running as root")
    if not (PKI / "ca.key").exists():
        fail("error execution phase: failed to load the CA: open /etc/kubernetes/pki/ca.key: "
             "no such file or directory (not a control plane)")
    valid_for = validity_from(config_path)
    for name, path, ca in CERTIFICATES:
        cert, _ = _load(path)
        if cert is None:
            continue
        _reissue(path, ca, valid_for)
        print(f"[renew] certificate {name} renewed")
    print("\nDone renewing certificates. You must restart the kube-apiserver, kube-controller-manager, "
          "kube-scheduler and etcd, so that they can use the new certificates.")


def plant(name: str, left: str) -> None:
    """Re-issue certificate `name` so that only `left` (a Go duration) remains."""
    from impl import parse_duration
    match = next(((p, ca) for n, p, ca in CERTIFICATES if n == name), None)
    if match is None or _load(match[0])[0] is None:
        fail(f"lab certs plant: no certificate {name} here")
    _reissue(match[0], match[1], datetime.timedelta(seconds=parse_duration(left)))
