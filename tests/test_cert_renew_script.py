"""scripts/node/cert-renew.sh run for real against certificates made with openssl
and a recording kubeadm: it renews only when a certificate kubeadm renews is due,
with the init config, and puts the static pod manifests back."""
import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from components.cluster.node_scripts import script_text

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="needs openssl")


def make_cert(path: Path, days: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
                    "-subj", "/CN=test", "-keyout", str(path.with_suffix(".key")), "-out", str(path)],
                   check=True, capture_output=True)
    return path.read_bytes()


def kubeconfig(path: Path, days: int) -> None:
    pem = make_cert(path.with_suffix(".pem"), days)
    data = base64.b64encode(pem).decode()
    path.write_text(f"apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user:\n"
                    f"    client-certificate-data: {data}\n    client-key-data: S0VZ\n")


@pytest.fixture
def node(tmp_path):
    kube = tmp_path / "kubernetes"
    for name in ("apiserver", "apiserver-kubelet-client", "front-proxy-client"):
        make_cert(kube / "pki" / f"{name}.crt", 100)
    make_cert(kube / "pki" / "etcd" / "server.crt", 100)
    kubeconfig(kube / "admin.conf", 100)
    (kube / "manifests").mkdir()
    for component in ("kube-apiserver", "etcd"):
        (kube / "manifests" / f"{component}.yaml").write_text(component)
    (kube / "kubeadm-init.yaml").write_text("kind: InitConfiguration\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    # The fake kubeadm records its arguments and what was in the manifests directory.
    (bin_dir / "kubeadm").write_text(
        f'#!/bin/bash\necho "kubeadm $* | $(ls {kube}/manifests | tr "\\n" " ")" >> {log}\n')
    (bin_dir / "kubectl").write_text(f'#!/bin/bash\necho "kubectl $*" >> {log}\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return kube, bin_dir, log


def run(node, **env):
    kube, bin_dir, log = node
    environment = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "KUBE_DIR": str(kube),
                   "STOP_WAIT_SECONDS": "0", "RENEW_BEFORE_DAYS": "30", "LOGIN_USER": "nobody", **env}
    result = subprocess.run(["bash", "-c", script_text("cert-renew.sh"), "cert-renew"],
                            env=environment, capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


def test_nothing_to_renew_when_every_certificate_has_time(node):
    result, calls = run(node)
    assert result.returncode == 0, result.stderr
    assert "nothing to renew" in result.stdout and calls == []


def test_a_due_certificate_is_renewed_and_the_static_pods_restart(node):
    kube, _, _ = node
    make_cert(kube / "pki" / "apiserver.crt", 5)
    result, calls = run(node)
    assert result.returncode == 0, result.stderr
    assert "apiserver.crt expires" in result.stdout
    # renewed with the init config while the manifests were still in place, then /readyz
    assert calls[0] == (f"kubeadm certs renew all --config {kube}/kubeadm-init.yaml | "
                        "etcd.yaml kube-apiserver.yaml ")
    assert calls[1].startswith("kubectl") and "/readyz" in calls[1]
    assert sorted(p.name for p in (kube / "manifests").iterdir()) == ["etcd.yaml", "kube-apiserver.yaml"]
    assert not (kube / "manifests-renewing").exists()


def test_the_window_is_renew_before_days(node):
    kube, _, _ = node
    make_cert(kube / "pki" / "apiserver.crt", 5)
    result, calls = run(node, RENEW_BEFORE_DAYS="3")
    assert "nothing to renew" in result.stdout and calls == []


def test_a_kubeconfig_client_certificate_counts(node):
    kube, _, _ = node
    kubeconfig(kube / "admin.conf", 10)
    result, calls = run(node)
    assert "admin.conf expires" in result.stdout and calls[0].startswith("kubeadm certs renew all")


def test_force_renews_now_and_without_the_init_config_uses_the_cluster_config(node):
    kube, _, _ = node
    (kube / "kubeadm-init.yaml").unlink()
    result, calls = run(node, FORCE="1")
    assert result.returncode == 0, result.stderr
    assert calls[0].startswith("kubeadm certs renew all | ")


def test_manifests_left_aside_are_put_back_first(node):
    kube, _, _ = node
    aside = kube / "manifests-renewing"
    aside.mkdir()
    (kube / "manifests" / "etcd.yaml").rename(aside / "etcd.yaml")
    result, calls = run(node)
    assert "moving them back" in result.stdout and calls == []
    assert (kube / "manifests" / "etcd.yaml").exists() and not aside.exists()
