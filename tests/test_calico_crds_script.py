"""scripts/node/calico-crds.sh with a stand-in kubectl: the version's CRDs applied
server-side (Calico's upgrade docs), then, for the v3.32+ CRD chart, Helm's ownership
annotations and label on the same CRDs so that the release adopts them."""
import os
import subprocess

from components.cluster.node_scripts import script_text

URL = "https://example.invalid/manifests/v1_crd_projectcalico_org.yaml"


def run(tmp_path, **env):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(f'#!/bin/bash\necho "$*" >>"{tmp_path}/calls"\n'
                       '[ -z "$FAIL_APPLY" ] || [[ "$*" != *" apply "* ]]\n')
    kubectl.chmod(0o755)
    result = subprocess.run(
        ["bash", "-c", script_text("calico-crds.sh"), "x"],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CRDS_URL": URL, **env},
        capture_output=True, text=True, timeout=30)
    calls = tmp_path / "calls"
    return result, [c.replace("--kubeconfig /etc/kubernetes/admin.conf ", "")
                    for c in (calls.read_text().splitlines() if calls.exists() else [])]


def test_the_crds_are_applied_server_side_and_nothing_else(tmp_path):
    result, calls = run(tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls == [f"apply --server-side --force-conflicts -f {URL}"]


def test_with_a_release_the_crds_are_handed_to_it_after_the_apply(tmp_path):
    result, calls = run(tmp_path, RELEASE="calico-crds", RELEASE_NAMESPACE="tigera-operator")
    assert result.returncode == 0, result.stderr
    assert calls == [
        f"apply --server-side --force-conflicts -f {URL}",
        f"annotate --overwrite -f {URL} meta.helm.sh/release-name=calico-crds "
        "meta.helm.sh/release-namespace=tigera-operator",
        f"label --overwrite -f {URL} app.kubernetes.io/managed-by=Helm",
    ]


def test_a_failed_apply_stops_with_what_to_do(tmp_path):
    result, calls = run(tmp_path, RELEASE="calico-crds", RELEASE_NAMESPACE="tigera-operator",
                        FAIL_APPLY="1")
    assert result.returncode == 1
    assert "could not apply the Calico CRDs" in result.stderr and len(calls) == 1
