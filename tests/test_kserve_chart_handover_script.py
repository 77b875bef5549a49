"""scripts/node/kserve-chart-handover.sh with a stand-in kubectl: every serving.kserve.io
CRD kept by Helm, every ClusterServingRuntime kept and handed to kserve-runtime-configs;
nothing on a cluster without KServe."""
import os
import subprocess

from components.cluster.node_scripts import script_text

CRDS = ["customresourcedefinition.apiextensions.k8s.io/clusterservingruntimes.serving.kserve.io",
        "customresourcedefinition.apiextensions.k8s.io/localmodelcaches.serving.kserve.io"]


def run(tmp_path, crds, runtimes):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    crd_list = "\\n".join([*crds, "customresourcedefinition.apiextensions.k8s.io/ippools.crd.projectcalico.org"])
    (bin_dir / "kubectl").write_text(
        "#!/bin/bash\n"
        f'case "$*" in *" get crd "*) printf "{crd_list}\\n";; '
        f'*" get clusterservingruntimes"*) printf "{chr(10).join(runtimes)}";; '
        f'*) echo "$*" >>"{tmp_path}/calls";; esac\n')
    (bin_dir / "kubectl").chmod(0o755)
    result = subprocess.run(
        ["bash", "-c", script_text("kserve-chart-handover.sh"), "x"],
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
             "RUNTIMES_RELEASE": "kserve-runtime-configs", "RELEASE_NAMESPACE": "kserve"},
        capture_output=True, text=True, timeout=30)
    calls = tmp_path / "calls"
    return result, [c.replace("--kubeconfig /etc/kubernetes/admin.conf ", "")
                    for c in (calls.read_text().splitlines() if calls.exists() else [])]


def test_crds_kept_and_runtimes_handed_over(tmp_path):
    result, calls = run(tmp_path, CRDS, ["clusterservingruntime.serving.kserve.io/kserve-sklearnserver"])
    assert result.returncode == 0, result.stderr
    assert calls == [
        f"annotate --overwrite {CRDS[0]} {CRDS[1]} helm.sh/resource-policy=keep",
        "annotate --overwrite clusterservingruntime.serving.kserve.io/kserve-sklearnserver "
        "helm.sh/resource-policy=keep meta.helm.sh/release-name=kserve-runtime-configs "
        "meta.helm.sh/release-namespace=kserve",
        "label --overwrite clusterservingruntime.serving.kserve.io/kserve-sklearnserver "
        "app.kubernetes.io/managed-by=Helm",
    ]


def test_a_cluster_without_kserve_is_left_alone(tmp_path):
    result, calls = run(tmp_path, [], [])
    assert result.returncode == 0, result.stderr
    assert calls == []
