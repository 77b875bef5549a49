"""Every pinned version and upstream URL, in one table.

Nothing else in the project writes a version string: scripts receive these
values as inputs, components read them from here, and the README's version
table is checked against `PINS` by a test. Each pin names the upstream page it
was checked against; when you bump one, re-read that page.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    component: str
    version: str
    checked_against: str  # the upstream page that confirms the version and its compatibility


# --- Kubernetes (kubeadm, kubelet, kubectl) ---------------------------------
KUBERNETES_MINOR = "1.31"
KUBERNETES_VERSION = "1.31.14"  # default patch release; stacks may pick another 1.31.x
# Debian revision of the pkgs.k8s.io packages: package version = f"{version}-{revision}".
KUBERNETES_PACKAGE_REVISION = "1.1"
KUBERNETES_APT_REPO = f"https://pkgs.k8s.io/core:/stable:/v{KUBERNETES_MINOR}/deb/"

# --- Container runtime -------------------------------------------------------
# containerd.io from Docker's apt repository: it keeps every released version,
# so an exact pin stays installable (Ubuntu's archive keeps only the newest).
# An apt version pattern: Docker's builds are named 1.7.28-1 or
# 1.7.28-1~ubuntu.22.04~jammy depending on when they were built.
CONTAINERD_PACKAGE_VERSION = "1.7.28-1*"
DOCKER_APT_REPO = "https://download.docker.com/linux/ubuntu"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # what kubeadm 1.31 expects

# --- CNI -----------------------------------------------------------------------
CALICO_VERSION = "v3.29.7"
CALICO_CHART_REPO = "https://docs.tigera.io/calico/charts"
CALICO_CHART = "tigera-operator"


def kubernetes_package_version(version: str) -> str:
    """'1.31.14' -> '1.31.14-1.1', the apt version string of kubelet/kubeadm/kubectl."""
    return f"{version}-{KUBERNETES_PACKAGE_REVISION}"


PINS: tuple[Pin, ...] = (
    Pin("Kubernetes (kubeadm, kubelet, kubectl)", KUBERNETES_VERSION,
        "https://kubernetes.io/releases/ and https://pkgs.k8s.io/core:/stable:/v1.31/deb/"),
    Pin("containerd (containerd.io package)", CONTAINERD_PACKAGE_VERSION,
        "https://containerd.io/releases/ (Kubernetes support matrix)"),
    Pin("pause (sandbox) image", PAUSE_IMAGE,
        "kubeadm config images list --kubernetes-version v1.31"),
    Pin("Calico (tigera-operator chart)", CALICO_VERSION,
        "https://docs.tigera.io/calico/3.29/getting-started/kubernetes/requirements"),
)
