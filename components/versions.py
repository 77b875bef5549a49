"""Every pinned version and upstream URL, in one table.

Nothing else in the project writes a version string: scripts receive these
values as inputs, components read them from here, and the README's version
table is checked against `PINS` by a test. Each pin names the upstream page it
was checked against; when you bump one, re-read that page.
"""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field


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
# containerd.io bundles runc. Its first 1.7.28 build (1.7.28-1) has runc 1.3.0,
# which predates the fixes for CVE-2025-31133, CVE-2025-52565 and CVE-2025-52881;
# Docker rebuilt it as 1.7.28-2 with runc 1.3.3. 1.7.29-1 is built from containerd
# v1.7.29, whose script/setup/runc-version is v1.3.3 (Docker's build takes runc
# from that file unless told otherwise), and it is the newest containerd.io 1.7.x
# for jammy: Docker's packages moved on to containerd 2.x after it.
# An apt version pattern: since mid-2025 Docker names its builds
# <version>-<revision>~ubuntu.22.04~jammy (docker/packaging gen-deb-changelog.sh);
# "-1*" takes that name and any older spelling of the same build, never a later
# revision.
CONTAINERD_PACKAGE_VERSION = "1.7.29-1*"
# runc releases that fixed those three CVEs (runc 1.2.8 and 1.3.3 changelogs,
# advisory GHSA-cgrx-mc8f-2prm; 1.4.0-rc.3 and later 1.4 include them). A runc of
# an older series, or older than these in its series, gets a preflight warning.
RUNC_FIXED_RELEASES = ("1.2.8", "1.3.3", "1.4.0-rc.3")
RUNC_ADVISORY = "CVE-2025-31133, CVE-2025-52565 and CVE-2025-52881"
DOCKER_APT_REPO = "https://download.docker.com/linux/ubuntu"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # what kubeadm 1.31 expects
# Preflight asks the nodes whether they reach the image registry (warn only).
IMAGE_REGISTRY_PROBE_URL = "https://registry.k8s.io/v2/"

# --- etcd client tools (etcdctl, etcdutl) for snapshots and restore -------------
# kubeadm installs no etcdctl (etcd runs as a static pod from registry.k8s.io/etcd),
# and Ubuntu 22.04's etcd-client package is etcd 3.3, which has no etcdutl and
# whose `snapshot restore` predates the 3.5 data format: so the official release
# tarball, checked against its sha256 before anything is unpacked. 3.5.24 is the
# etcd kubeadm's constants.go names for Kubernetes 1.31-1.33 (SupportedEtcdVersion
# "3.5.24-0"); any 3.5 etcdctl talks to a 3.5 server.
ETCD_CLIENT_VERSION = "3.5.24"
ETCD_RELEASE_URL = "https://github.com/etcd-io/etcd/releases/download"
ETCD_CLIENT_SHA256 = {  # etcd-v<version>-linux-<arch>.tar.gz
    "amd64": "042497e2ddcee06f22e5d486d81f58affa26b53ee423e2a6aaca3d3ea98c8191",
    "arm64": "efc01f6b3fbef0f000cb53bcad4845c116d7fdd8769ca39d9c40d2fe4d2e509f",
}

# --- The virtual IP in front of several control planes (kubernetes.highAvailability)
# keepalived and haproxy from Ubuntu 22.04's own archive, as OS services (the
# first option of kubeadm's docs/ha-considerations.md). keepalived: jammy/main's
# build, which the release pocket keeps for good. haproxy: jammy ships the 2.4
# LTS series and takes its micro-releases and security fixes as updates (Ubuntu's
# HAProxy MRE policy); the archive keeps only the newest of those builds, so an
# exact build would stop installing: the pattern takes the newest 2.4 build and
# never another series.
KEEPALIVED_PACKAGE_VERSION = "1:2.2.4-0.2build1"
HAPROXY_PACKAGE_VERSION = "2.4.*"

# --- CNI -----------------------------------------------------------------------
CALICO_VERSION = "v3.29.7"
CALICO_CHART_REPO = "https://docs.tigera.io/calico/charts"
CALICO_CHART = "tigera-operator"
# From Calico v3.32 the tigera-operator chart no longer carries the CRDs (crd.projectcalico.org
# and operator.tigera.io): they come from this chart of the same repository and version
# (projectcalico/calico charts/tigera-operator/README.md at v3.32.1, "Custom Resource
# Definitions"; the Makefile packages it as crd.projectcalico.org.v1-<version>.tgz).
CALICO_CRDS_CHART = "crd.projectcalico.org.v1"
# Helm does not upgrade the CRDs in a chart's crds/ (the tigera-operator chart up to v3.31):
# Calico's upgrade docs apply the version's CRDs server-side before `helm upgrade`
# (docs.tigera.io/calico/3.NN/operations/upgrading/kubernetes-upgrade, "Upgrading an
# installation that was installed using Helm"): manifests/operator-crds.yaml up to v3.31,
# manifests/v1_crd_projectcalico_org.yaml from v3.32 (the 32 CRDs of the
# crd.projectcalico.org.v1 chart). Both files are at each pinned Calico tag.
CALICO_MANIFESTS = "https://raw.githubusercontent.com/projectcalico/calico/{version}/manifests/{file}"


# --- Serving layers --------------------------------------------------------------
CERT_MANAGER_VERSION = "v1.16.5"  # supports Kubernetes 1.25-1.32; chart value crds.enabled
CERT_MANAGER_CHART_REPO = "https://charts.jetstack.io"

ISTIO_VERSION = "1.24.6"  # supports Kubernetes 1.28-1.31
ISTIO_CHART_REPO = "https://istio-release.storage.googleapis.com/charts"

# Knative Serving 1.17 with net-istio 1.17 (net-istio 1.17.0 is tested with Istio 1.24;
# it has no patch releases). Serving 1.17 needs Kubernetes >= 1.30.
KNATIVE_SERVING_VERSION = "knative-v1.17.2"
KNATIVE_NET_ISTIO_VERSION = "knative-v1.17.0"
KNATIVE_SERVING_RELEASE = f"https://github.com/knative/serving/releases/download/{KNATIVE_SERVING_VERSION}"
KNATIVE_NET_ISTIO_RELEASE = (
    f"https://github.com/knative/net-istio/releases/download/{KNATIVE_NET_ISTIO_VERSION}")
KNATIVE_SERVING_CRDS_URL = f"{KNATIVE_SERVING_RELEASE}/serving-crds.yaml"
KNATIVE_SERVING_CORE_URL = f"{KNATIVE_SERVING_RELEASE}/serving-core.yaml"
KNATIVE_NET_ISTIO_URL = f"{KNATIVE_NET_ISTIO_RELEASE}/net-istio.yaml"

KSERVE_VERSION = "v0.13.1"
KSERVE_CRD_CHART = "oci://ghcr.io/kserve/charts/kserve-crd"
KSERVE_CHART = "oci://ghcr.io/kserve/charts/kserve"
# KServe's CRDs as released, for tests that validate the resources the program
# creates (scripts/fetch_upstream.py fetches them): file name -> URL at the tag.
KSERVE_CRD_URLS = {
    f"{plural}.yaml": "https://raw.githubusercontent.com/kserve/kserve/"
                      f"{KSERVE_VERSION}/config/crd/full/serving.kserve.io_{plural}.yaml"
    for plural in ("inferenceservices", "servingruntimes", "clusterservingruntimes")
}
# KServe 0.13.1 ships gcr.io/kubebuilder/kube-rbac-proxy:v0.13.1, which no longer
# exists (the controller never becomes Ready). KServe 0.14 moved to this image
# with the same arguments.
KUBE_RBAC_PROXY_IMAGE = "quay.io/brancz/kube-rbac-proxy:v0.18.0"
# Images that upstream manifests still name but that can no longer be pulled.
KNOWN_GONE_IMAGES = ("gcr.io/kubebuilder/kube-rbac-proxy:v0.13.1",)

# --- Storage (storage, modelStores) ------------------------------------------------
# rancher/local-path-provisioner: node-local volumes (ReadWriteOnce and
# ReadWriteOncePod only), class `local-path`, WaitForFirstConsumer, reclaim
# Delete. Its chart is not published to a Helm repository, so the program
# applies the release manifest, which names the provisioner image below.
LOCAL_PATH_PROVISIONER_VERSION = "v0.0.37"
LOCAL_PATH_PROVISIONER_MANIFEST_URL = (
    "https://raw.githubusercontent.com/rancher/local-path-provisioner/"
    f"{LOCAL_PATH_PROVISIONER_VERSION}/deploy/local-path-storage.yaml")
LOCAL_PATH_PROVISIONER_IMAGE = f"docker.io/rancher/local-path-provisioner:{LOCAL_PATH_PROVISIONER_VERSION}"
# kubernetes-sigs/nfs-subdir-external-provisioner: the chart (its latest release)
# and the image it defaults to, written out so the pin is ours.
NFS_PROVISIONER_CHART = "nfs-subdir-external-provisioner"
NFS_PROVISIONER_CHART_VERSION = "4.0.18"
NFS_PROVISIONER_CHART_REPO = "https://kubernetes-sigs.github.io/nfs-subdir-external-provisioner/"
NFS_PROVISIONER_IMAGE_REPOSITORY = "registry.k8s.io/sig-storage/nfs-subdir-external-provisioner"
NFS_PROVISIONER_IMAGE_TAG = "v4.0.2"
# The short-lived pod that writes uploads into a claim: sh, tar, chmod.
# BusyBox's newest stable release (1.38 is tagged "unstable" upstream).
UPLOAD_HELPER_IMAGE = "docker.io/library/busybox:1.37.0"
# Knative's HPA autoscaler class (serving-hpa.yaml of the same release): installed
# after core only when a Serverless model scales on cpu.
KNATIVE_SERVING_HPA_URL = f"{KNATIVE_SERVING_RELEASE}/serving-hpa.yaml"

# --- Monitoring (off unless monitoring.enabled) ---------------------------------
# kube-prometheus-stack 88.5.3: kubeVersion >=1.25.0-0; Prometheus Operator v0.93.1,
# Prometheus v3.14.0, Grafana 13.2.0 (grafana chart 12.11.1), kube-state-metrics
# v2.20.0 (chart 8.4.0), node-exporter v1.12.1 (chart 4.56.1).
PROMETHEUS_COMMUNITY_CHART_REPO = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_VERSION = "88.5.3"
# prometheus-adapter 5.3.0 (adapter v0.12.0): the custom metrics API for the
# requests/s HPA of RawDeployment models, and the resource metrics API
# (metrics.k8s.io) that cpu/memory HPAs read; kubeadm installs no metrics-server.
PROMETHEUS_ADAPTER_VERSION = "5.3.0"

# --- GPU nodes (only for nodes with `gpu: nvidia`) -------------------------------
# Ubuntu 22.04's NVIDIA server driver branches: `nvidia-driver-<branch>` and
# `nvidia-utils-<branch>`, from restricted/multiverse in jammy-updates and
# jammy-security. Ubuntu keeps only the newest build of each branch, so the branch
# is the pin and apt-mark hold keeps it. A branch Ubuntu retired is turned into a
# transitional package that installs a newer branch (nvidia-driver-510-server
# installs 515-server in jammy): so only branches that still provide
# `nvidia-utils` themselves are accepted. 550-server is not among them in the
# jammy-updates list checked; 418/450/470-server are, but predate CUDA 12 (driver
# 525+), which today's model servers need, and are left out on purpose.
NVIDIA_DRIVER_BRANCHES = ("535-server", "565-server", "570-server", "580-server",
                          "590-server", "595-server")
NVIDIA_DRIVER_BRANCHES_PAGE = "https://packages.ubuntu.com/jammy-updates/amd64/nvidia-utils"
# NVIDIA Container Toolkit from NVIDIA's apt repository (the install guide's
# "production repository"): its signing key, the list file it publishes, and the
# version of the four packages the guide installs together.
NVIDIA_CONTAINER_TOOLKIT_VERSION = "1.20.0-1"
NVIDIA_CONTAINER_TOOLKIT_PACKAGES = ("nvidia-container-toolkit", "nvidia-container-toolkit-base",
                                     "libnvidia-container-tools", "libnvidia-container1")
NVIDIA_CONTAINER_TOOLKIT_GPGKEY_URL = "https://nvidia.github.io/libnvidia-container/gpgkey"
NVIDIA_CONTAINER_TOOLKIT_APT_REPO = "https://nvidia.github.io/libnvidia-container/stable/deb/"
# NVIDIA k8s-device-plugin chart (deployments/helm/nvidia-device-plugin at the tag
# v0.20.0; image nvcr.io/nvidia/k8s-device-plugin:v0.20.0, the chart's appVersion).
NVIDIA_DEVICE_PLUGIN_CHART = "nvidia-device-plugin"
NVIDIA_DEVICE_PLUGIN_VERSION = "0.20.0"
NVIDIA_DEVICE_PLUGIN_CHART_REPO = "https://nvidia.github.io/k8s-device-plugin"
NVIDIA_DEVICE_PLUGIN_SOURCE = ("github.com/NVIDIA/k8s-device-plugin",
                               f"v{NVIDIA_DEVICE_PLUGIN_VERSION}",
                               "deployments/helm/nvidia-device-plugin")
# NVIDIA dcgm-exporter chart (deployment/ at the tag <DCGM>-<exporter> of
# NVIDIA/dcgm-exporter; published in the chart repository's index.yaml). Its
# values.yaml names the image below (the chart's appVersion with DCGM's version in
# front and the distroless platform after, as RELEASE.md describes the long form;
# the README's `docker run` line names the same tag). Only with monitoring on and a
# GPU node.
DCGM_EXPORTER_CHART = "dcgm-exporter"
DCGM_EXPORTER_VERSION = "4.8.2"
DCGM_VERSION = "4.5.3"  # the DCGM library in the image (the tag's first part)
DCGM_EXPORTER_TAG = f"{DCGM_VERSION}-{DCGM_EXPORTER_VERSION}"
DCGM_EXPORTER_IMAGE = f"nvcr.io/nvidia/k8s/dcgm-exporter:{DCGM_EXPORTER_TAG}-distroless"
DCGM_EXPORTER_CHART_REPO = "https://nvidia.github.io/dcgm-exporter/helm-charts"
DCGM_EXPORTER_SOURCE = ("github.com/NVIDIA/dcgm-exporter", DCGM_EXPORTER_TAG, "deployment")

# The default photo scripts/predict.py sends: flower.jpg from scikit-learn's
# wheel on PyPI (a dahlia, CC BY 2.0, by Flickr user vultilion; see that
# package's sklearn/datasets/images/README.txt). Fetched with pip, not installed.
SAMPLE_IMAGE_PACKAGE = "scikit-learn==1.9.1"
SAMPLE_IMAGE_PATH_IN_WHEEL = "sklearn/datasets/images/flower.jpg"


# --- Lab VMs (scripts/vms.sh, scripts/vms/Vagrantfile) -----------------------------
# The Vagrant box of the VMs scripts/vms.sh makes. Roboxes' generic/ubuntu2204 is
# published for both providers the Vagrantfile serves (libvirt and virtualbox);
# 4.3.12 (lavabit/robox tag of 2024-01-04) is the newest version seen published for
# both: users' `vagrant box list` shows "generic/ubuntu2204 (libvirt, 4.3.12)". The
# repository has a later tag, 4.3.14, but no box of it was seen, and the pipeline has
# built nothing since (last commit 2025-02): re-check the portal page before a bump.
# bento/ubuntu-22.04 was
# the other candidate: its newest builds (202510.26.0) have no libvirt (qemu) box, and
# its 202502.21.0 libvirt box does not boot (chef/bento#1604).
# The Vagrantfile reads these two lines: keep them as they are written.
VAGRANT_BOX = "generic/ubuntu2204"
VAGRANT_BOX_VERSION = "4.3.12"


def kubernetes_package_version(version: str) -> str:
    """'1.31.14' -> '1.31.14-1.1', the apt version string of kubelet/kubeadm/kubectl."""
    return f"{version}-{KUBERNETES_PACKAGE_REVISION}"


PINS: tuple[Pin, ...] = (
    Pin("Kubernetes (kubeadm, kubelet, kubectl)", KUBERNETES_VERSION,
        "https://kubernetes.io/releases/ and https://pkgs.k8s.io/core:/stable:/v1.31/deb/"),
    Pin("containerd (containerd.io package)", CONTAINERD_PACKAGE_VERSION,
        "https://containerd.io/releases/ (Kubernetes support matrix); containerd v1.7.29 "
        "script/setup/runc-version (v1.3.3); runc v1.3.3 CHANGELOG.md (the CVE fixes); "
        "docker/packaging pkg/containerd (runc from that file, deb names ~ubuntu.22.04~jammy)"),
    Pin("pause (sandbox) image", PAUSE_IMAGE,
        "kubeadm config images list --kubernetes-version v1.31"),
    Pin("etcd client tools (etcdctl, etcdutl; release tarball)", ETCD_CLIENT_VERSION,
        "kubernetes cmd/kubeadm/app/constants/constants.go SupportedEtcdVersion (31: 3.5.24-0); "
        "sha256 of etcd-v3.5.24-linux-{amd64,arm64}.tar.gz from kubernetes-sigs/kubespray "
        "roles/kubespray_defaults/vars/main/checksums.yml (etcd_binary_checksums)"),
    Pin("keepalived (Ubuntu 22.04 package; control planes behind a virtual IP)",
        KEEPALIVED_PACKAGE_VERSION,
        "https://packages.ubuntu.com/jammy/keepalived (jammy/main 1:2.2.4-0.2build1, as "
        "`apt-cache madison keepalived` shows it on 22.04)"),
    Pin("haproxy (Ubuntu 22.04 package; control planes behind a virtual IP)",
        HAPROXY_PACKAGE_VERSION,
        "https://packages.ubuntu.com/jammy-updates/haproxy and "
        "https://wiki.ubuntu.com/HAProxyUpdates (Jammy: HAProxy 2.4.x, micro-release updates)"),
    Pin("Calico (tigera-operator chart)", CALICO_VERSION,
        "https://docs.tigera.io/calico/3.29/getting-started/kubernetes/requirements"),
    Pin("cert-manager (Helm chart)", CERT_MANAGER_VERSION,
        "https://cert-manager.io/docs/releases/ (1.16: Kubernetes 1.25-1.32)"),
    Pin("Istio (base, istiod, gateway charts)", ISTIO_VERSION,
        "https://istio.io/latest/news/releases/1.24.x/announcing-1.24/ (Kubernetes 1.28-1.31)"),
    Pin("Knative Serving", KNATIVE_SERVING_VERSION,
        "https://github.com/knative/serving/releases (1.17 needs Kubernetes >= 1.30)"),
    Pin("Knative net-istio", KNATIVE_NET_ISTIO_VERSION,
        "https://github.com/knative-extensions/net-istio/releases (1.17.0 tested with Istio 1.24)"),
    Pin("KServe (kserve-crd and kserve charts)", KSERVE_VERSION,
        "https://github.com/kserve/kserve/releases/tag/v0.13.1 and charts/kserve-resources/values.yaml"),
    Pin("kube-rbac-proxy image (replaces the gone gcr.io one)", KUBE_RBAC_PROXY_IMAGE,
        "KServe v0.14.0 config/default/manager_auth_proxy_patch.yaml"),
    Pin("local-path-provisioner (release manifest)", LOCAL_PATH_PROVISIONER_VERSION,
        "rancher/local-path-provisioner tag v0.0.37: deploy/local-path-storage.yaml names "
        "docker.io/rancher/local-path-provisioner:v0.0.37; README: Kubernetes v1.12+"),
    Pin("nfs-subdir-external-provisioner (Helm chart)", NFS_PROVISIONER_CHART_VERSION,
        "kubernetes-sigs/nfs-subdir-external-provisioner tag nfs-subdir-external-provisioner-4.0.18: "
        "charts/.../Chart.yaml (kubeVersion >=1.9.0-0) and values.yaml"),
    Pin("nfs-subdir-external-provisioner image", NFS_PROVISIONER_IMAGE_TAG,
        "the same chart's values.yaml image.tag (appVersion 4.0.2), on registry.k8s.io/sig-storage"),
    Pin("upload helper pod image (BusyBox)", UPLOAD_HELPER_IMAGE,
        "docker-library/official-images library/busybox: 1.37.0 is the newest stable tag"),
    Pin("Knative Serving HPA autoscaler class (serving-hpa.yaml)", KNATIVE_SERVING_VERSION,
        "knative/serving knative-v1.17.2 config/hpa-autoscaling, hack/generate-yamls.sh"),
    Pin("kube-prometheus-stack (Helm chart)", KUBE_PROMETHEUS_STACK_VERSION,
        "prometheus-community/helm-charts tag kube-prometheus-stack-88.5.3: Chart.yaml "
        "(kubeVersion >=1.25.0-0, appVersion v0.93.1) and values.yaml"),
    Pin("prometheus-adapter (Helm chart)", PROMETHEUS_ADAPTER_VERSION,
        "prometheus-community/helm-charts tag prometheus-adapter-5.3.0: Chart.yaml "
        "(appVersion v0.12.0) and values.yaml"),
    Pin("NVIDIA server driver branches (nvidia-driver-<branch>, nvidia-utils-<branch>)",
        " ".join(NVIDIA_DRIVER_BRANCHES),
        f"{NVIDIA_DRIVER_BRANCHES_PAGE} (the packages providing nvidia-utils in jammy-updates); "
        "https://packages.ubuntu.com/jammy-updates/nvidia-driver-595-server"),
    Pin("NVIDIA Container Toolkit (apt packages)", NVIDIA_CONTAINER_TOOLKIT_VERSION,
        "https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html "
        "(repository, key, NVIDIA_CONTAINER_TOOLKIT_VERSION=1.20.0-1) and its release notes"),
    Pin("NVIDIA k8s-device-plugin (Helm chart)", NVIDIA_DEVICE_PLUGIN_VERSION,
        "NVIDIA/k8s-device-plugin tag v0.20.0: deployments/helm/nvidia-device-plugin/Chart.yaml "
        "(kubeVersion >= 1.10.0-0, appVersion 0.20.0) and values.yaml"),
    Pin("NVIDIA dcgm-exporter (Helm chart)", DCGM_EXPORTER_VERSION,
        "NVIDIA/dcgm-exporter tag 4.5.3-4.8.2: deployment/Chart.yaml (kubeVersion >= 1.19.0-0, "
        "appVersion 4.8.2), deployment/values.yaml, hack/VERSION; gh-pages "
        "helm-charts/index.yaml lists dcgm-exporter 4.8.2 (2026-05-05), the newest"),
    Pin("NVIDIA dcgm-exporter image (DCGM 4.5.3)", DCGM_EXPORTER_IMAGE,
        "the same tag's deployment/values.yaml image.repository and image.tag, README.md "
        "(docker run nvcr.io/nvidia/k8s/dcgm-exporter:4.5.3-4.8.2-distroless) and RELEASE.md"),
    Pin("sample flower photo (scikit-learn wheel)", SAMPLE_IMAGE_PACKAGE,
        "https://pypi.org/project/scikit-learn/ (sklearn/datasets/images/README.txt: CC BY 2.0)"),
    Pin("Vagrant box of the lab VMs (scripts/vms.sh; libvirt and virtualbox)",
        VAGRANT_BOX_VERSION,
        "https://portal.cloud.hashicorp.com/vagrant/discover/generic/ubuntu2204 (versions "
        "and providers; not readable from the build machine), lavabit/robox tags and "
        "generic-{libvirt,virtualbox}-x64.json (ubuntu2204 for both providers); "
        "chef/bento CHANGELOG.md 202510.26.0 table (no ubuntu-22.04 qemu build)"),
)


# ============================================================================== release trains
# One train per Kubernetes minor: the versions of every layer that upstream supports
# together on that minor. The module-level names above are the 1.31 train (the
# default). Each train's `pins` names the page that says so; `SUPPORT` below holds each
# component's stated Kubernetes range as data, and tests/test_trains.py checks every
# train against it; docs/releases.md has the table and its sources.

KUBERNETES_APT_REPO_PATTERN = "https://pkgs.k8s.io/core:/stable:/v{minor}/deb/"
KUBERNETES_RELEASES_PAGE = "https://kubernetes.io/releases/"
KSERVE_CHARTS = "oci://ghcr.io/kserve/charts"


def kubernetes_apt_repo(minor: str) -> str:
    """pkgs.k8s.io has one repository per minor: '1.32' -> its .../v1.32/deb/ URL."""
    return KUBERNETES_APT_REPO_PATTERN.format(minor=minor)


def release_key(version: str) -> tuple[int, ...]:
    """'v0.16.0' / 'knative-v1.19.9' / '1.28.10' -> (0, 16, 0) ... for comparisons."""
    return tuple(int(n) for n in re.findall(r"\d+", version.split("v", 1)[-1]))


@dataclass(frozen=True)
class Train:
    kubernetes_minor: str
    kubernetes_version: str  # the default patch of this minor
    end_of_life: datetime.date  # kubernetes.io/releases: end of maintenance of the minor
    pause_image: str
    containerd_package_version: str
    calico_version: str
    cert_manager_version: str
    istio_version: str
    knative_serving_version: str
    knative_net_istio_version: str
    kserve_version: str
    pins: tuple[Pin, ...] = field(default=(), compare=False)

    @property
    def kubernetes_apt_repo(self) -> str:
        return kubernetes_apt_repo(self.kubernetes_minor)

    @property
    def calico_crds_chart(self) -> str | None:
        """The chart that installs Calico's CRDs where the operator chart has none (v3.32+)."""
        return CALICO_CRDS_CHART if release_key(self.calico_version) >= (3, 32) else None

    @property
    def calico_crds_url(self) -> str:
        """The CRD manifest Calico's upgrade docs apply before the chart of this version."""
        file = ("v1_crd_projectcalico_org.yaml" if self.calico_crds_chart
                else "operator-crds.yaml")
        return CALICO_MANIFESTS.format(version=self.calico_version, file=file)

    # --- Knative release files of this train
    @property
    def knative_serving_release(self) -> str:
        return f"https://github.com/knative/serving/releases/download/{self.knative_serving_version}"

    @property
    def knative_serving_crds_url(self) -> str:
        return f"{self.knative_serving_release}/serving-crds.yaml"

    @property
    def knative_serving_core_url(self) -> str:
        return f"{self.knative_serving_release}/serving-core.yaml"

    @property
    def knative_serving_hpa_url(self) -> str:
        return f"{self.knative_serving_release}/serving-hpa.yaml"

    @property
    def knative_net_istio_url(self) -> str:
        return ("https://github.com/knative/net-istio/releases/download/"
                f"{self.knative_net_istio_version}/net-istio.yaml")

    # --- KServe's breaking changes across trains (kserve/kserve at each tag)
    @property
    def kserve_chart(self) -> str:
        """The controller chart: published as `kserve` up to v0.16, `kserve-resources` from
        v0.17 (charts/kserve-resources/Chart.yaml `name`)."""
        name = "kserve-resources" if release_key(self.kserve_version) >= (0, 17) else "kserve"
        return f"{KSERVE_CHARTS}/{name}"

    @property
    def kserve_runtimes_chart(self) -> str | None:
        """From v0.17 the cluster serving runtimes moved out of the controller chart into
        `kserve-runtime-configs` (values `kserve.servingruntime.enabled`)."""
        if release_key(self.kserve_version) >= (0, 17):
            return f"{KSERVE_CHARTS}/kserve-runtime-configs"
        return None

    def kserve_deployment_mode(self, mode: str) -> str:
        """The name this train's KServe gives a deployment mode. v0.16 renamed Serverless to
        Knative and RawDeployment to Standard (pkg/constants/constants.go; the old names are
        deprecated there). The stack key keeps accepting either name."""
        new = release_key(self.kserve_version) >= (0, 16)
        aliases = {"Serverless": "Knative", "RawDeployment": "Standard"}
        if new:
            return aliases.get(mode, mode)
        return {v: k for k, v in aliases.items()}.get(mode, mode)

    def component_versions(self) -> dict[str, str]:
        """Component -> version, for the support check and the docs table."""
        return {"Kubernetes": self.kubernetes_version, "Calico": self.calico_version,
                "cert-manager": self.cert_manager_version, "Istio": self.istio_version,
                "Knative Serving": self.knative_serving_version,
                "Knative net-istio": self.knative_net_istio_version, "KServe": self.kserve_version}


@dataclass(frozen=True)
class Support:
    """One upstream release line's stated Kubernetes range (inclusive minors; None = no upper
    bound stated), and the page that states it."""
    component: str
    release: str  # a minor line, e.g. "1.26" or "v3.30"
    kubernetes_low: str
    kubernetes_high: str | None
    page: str

    def covers(self, version: str) -> bool:
        return release_key(version)[:2] == release_key(self.release)[:2]

    def supports(self, minor: str) -> bool:
        k = release_key(minor)
        low_ok = k >= release_key(self.kubernetes_low)
        return low_ok and (self.kubernetes_high is None or k <= release_key(self.kubernetes_high))


_CALICO_PAGE = "https://docs.tigera.io/calico/{}/getting-started/kubernetes/requirements"
_CERT_MANAGER_PAGE = "https://cert-manager.io/docs/releases/"
_ISTIO_PAGE = "https://istio.io/latest/docs/releases/supported-releases/"
_KNATIVE_PAGE = ("knative.dev/pkg version.go minimum, via endoflife.date products/knative.md; "
                 "https://knative.dev/docs/install/")
SUPPORT: tuple[Support, ...] = (
    *(Support("Calico", f"v{r}", lo, hi, _CALICO_PAGE.format(r)) for r, lo, hi in (
        ("3.29", "1.29", "1.32"), ("3.30", "1.31", "1.35"), ("3.31", "1.32", "1.35"),
        ("3.32", "1.34", "1.36"))),
    *(Support("cert-manager", f"v{r}", lo, hi, _CERT_MANAGER_PAGE) for r, lo, hi in (
        ("1.16", "1.25", "1.32"), ("1.17", "1.29", "1.33"), ("1.18", "1.29", "1.33"),
        ("1.19", "1.31", "1.35"), ("1.20", "1.32", "1.35"), ("1.21", "1.33", "1.36"))),
    *(Support("Istio", r, lo, hi, _ISTIO_PAGE) for r, lo, hi in (
        ("1.24", "1.28", "1.31"), ("1.25", "1.29", "1.32"), ("1.26", "1.29", "1.33"),
        ("1.27", "1.29", "1.33"), ("1.28", "1.30", "1.34"), ("1.29", "1.31", "1.35"),
        ("1.30", "1.32", "1.36"))),
    *(Support("Knative Serving", f"knative-v{r}", lo, None, _KNATIVE_PAGE) for r, lo in (
        ("1.17", "1.30"), ("1.18", "1.31"), ("1.19", "1.32"), ("1.20", "1.32"),
        ("1.21", "1.33"), ("1.22", "1.34"), ("1.23", "1.34"))),
)
# net-istio N is built and tested against one Istio minor (go.mod istio.io/client-go and
# third_party/istio-latest at the tag knative-vN.0).
NET_ISTIO_TESTED_ISTIO = {"1.17": "1.24", "1.18": "1.25", "1.19": "1.26", "1.20": "1.27",
                          "1.21": "1.28", "1.22": "1.29"}
# Components whose pages state no Kubernetes range: not range-checked (KServe tests one
# Kubernetes in CI; the monitoring and storage charts' kubeVersion has no upper bound).
UNRANGED = ("Kubernetes", "Knative net-istio", "KServe")


def _train_pins(t: Train) -> tuple[Pin, ...]:
    return (
        Pin("Kubernetes (kubeadm, kubelet, kubectl)", t.kubernetes_version,
            f"{KUBERNETES_RELEASES_PAGE} and {t.kubernetes_apt_repo}"),
        Pin("pause (sandbox) image", t.pause_image,
            f"kubeadm config images list --kubernetes-version v{t.kubernetes_minor}; kubespray "
            "roles/kubespray_defaults/vars/main/main.yml pod_infra_supported_versions"),
        Pin("containerd (containerd.io package)", t.containerd_package_version,
            "https://containerd.io/releases/ (Kubernetes support matrix)"),
        Pin("Calico (tigera-operator chart)", t.calico_version,
            _CALICO_PAGE.format(".".join(t.calico_version.lstrip("v").split(".")[:2]))),
        Pin("cert-manager (Helm chart)", t.cert_manager_version, _CERT_MANAGER_PAGE),
        Pin("Istio (base, istiod, gateway charts)", t.istio_version, _ISTIO_PAGE),
        Pin("Knative Serving", t.knative_serving_version, _KNATIVE_PAGE),
        Pin("Knative net-istio", t.knative_net_istio_version,
            "https://github.com/knative-extensions/net-istio/releases (go.mod istio.io/client-go)"),
        Pin("KServe (kserve-crd and controller charts)", t.kserve_version,
            f"https://github.com/kserve/kserve/releases/tag/{t.kserve_version} and "
            "charts/kserve-resources/values.yaml"),
    )


def _train(**fields) -> Train:
    return Train(**fields, pins=_train_pins(Train(**fields)))


# The 1.31 train is today's pins, unchanged; PINS above stays its full table.
TRAINS: dict[str, Train] = {t.kubernetes_minor: t for t in (
    Train(KUBERNETES_MINOR, KUBERNETES_VERSION, datetime.date(2025, 10, 28), PAUSE_IMAGE,
          CONTAINERD_PACKAGE_VERSION, CALICO_VERSION, CERT_MANAGER_VERSION, ISTIO_VERSION,
          KNATIVE_SERVING_VERSION, KNATIVE_NET_ISTIO_VERSION, KSERVE_VERSION, PINS),
    _train(kubernetes_minor="1.32", kubernetes_version="1.32.13",
           end_of_life=datetime.date(2026, 2, 28), pause_image="registry.k8s.io/pause:3.10",
           containerd_package_version=CONTAINERD_PACKAGE_VERSION, calico_version="v3.30.7",
           cert_manager_version="v1.19.6", istio_version="1.26.8",
           knative_serving_version="knative-v1.19.9", knative_net_istio_version="knative-v1.19.6",
           kserve_version="v0.15.2"),
    _train(kubernetes_minor="1.33", kubernetes_version="1.33.13",
           end_of_life=datetime.date(2026, 6, 28), pause_image="registry.k8s.io/pause:3.10",
           containerd_package_version=CONTAINERD_PACKAGE_VERSION, calico_version="v3.31.7",
           cert_manager_version="v1.20.3", istio_version="1.28.10",
           knative_serving_version="knative-v1.21.3", knative_net_istio_version="knative-v1.21.3",
           kserve_version="v0.16.0"),
    _train(kubernetes_minor="1.34", kubernetes_version="1.34.11",
           end_of_life=datetime.date(2026, 10, 27), pause_image="registry.k8s.io/pause:3.10.1",
           containerd_package_version=CONTAINERD_PACKAGE_VERSION, calico_version="v3.31.7",
           cert_manager_version="v1.21.1", istio_version="1.29.6",
           knative_serving_version="knative-v1.22.1", knative_net_istio_version="knative-v1.22.0",
           kserve_version="v0.17.1"),
    _train(kubernetes_minor="1.35", kubernetes_version="1.35.8",
           end_of_life=datetime.date(2027, 2, 28), pause_image="registry.k8s.io/pause:3.10.1",
           containerd_package_version=CONTAINERD_PACKAGE_VERSION, calico_version="v3.32.1",
           cert_manager_version="v1.21.1", istio_version="1.29.6",
           knative_serving_version="knative-v1.22.1", knative_net_istio_version="knative-v1.22.0",
           kserve_version="v0.20.0"),
)}
DEFAULT_TRAIN = TRAINS[KUBERNETES_MINOR]


def train_for(kubernetes_version: str) -> Train:
    """'1.32.13' (or 'v1.32.13') -> TRAINS['1.32']. A ValueError, naming the known trains,
    for anything else; the config layer turns it into a problem on kubernetes.version."""
    text = kubernetes_version.lstrip("v") if isinstance(kubernetes_version, str) else ""
    match = re.fullmatch(r"(\d+\.\d+)\.\d+", text)
    known = ", ".join(TRAINS)
    if not match:
        raise ValueError(f"not a full Kubernetes patch version (major.minor.patch); "
                         f"the trains are {known}")
    train = TRAINS.get(match.group(1))
    if train is None:
        raise ValueError(f"no release train for Kubernetes {match.group(1)}; the trains are {known}")
    return train


def next_train(train: Train) -> Train | None:
    """The train one minor above, if there is one."""
    major, minor = train.kubernetes_minor.split(".")
    return TRAINS.get(f"{major}.{int(minor) + 1}")


def end_of_life_warning(train: Train, today: datetime.date) -> str | None:
    """A warning when the train's Kubernetes minor is past end of life on `today`."""
    if today <= train.end_of_life:
        return None
    after = next_train(train)
    move = (f"move to the {after.kubernetes_minor} train (kubernetes.version: "
            f"{after.kubernetes_version})" if after else "no newer train is in this project yet")
    supported = [t for t in TRAINS.values() if t.end_of_life >= today]
    if after and supported and supported[0] is not after:
        # The next train may be past its end of life too: say where the minors lead.
        move += (f", one minor per upgrade, on to the {supported[0].kubernetes_minor} train, "
                 f"supported until {supported[0].end_of_life.isoformat()}")
    return (f"Kubernetes {train.kubernetes_minor} reached end of life on "
            f"{train.end_of_life.isoformat()} ({KUBERNETES_RELEASES_PAGE}); it gets no more "
            f"security fixes: {move}.")


# ============================================================================== layers across trains
# When kubernetes.version moves to the next train, each layer walks to the new train's
# version through the releases upstream requires in between (components/upgrade/layers.py
# plans one step per layer per `pulumi up`). Istio in place and Knative Serving must pass
# every minor; cert-manager recommends it; Calico and KServe state no such rule (the pages
# are in each step's `page`, and docs/upgrades.md). Each intermediate is the newest patch
# of its minor.
# `when` places a step around the Kubernetes upgrade of the move:
#   BEFORE: it must run while the cluster is on the old minor (the layer's version before it
#           does not support the new minor), so the nodes wait for it;
#   AFTER:  it needs the new minor (Knative's controller refuses an older Kubernetes);
#   EITHER: it supports both minors.
BEFORE, AFTER, EITHER = "before", "after", "either"
# The layer names are SUPPORT's component names; Knative's steps carry their net-istio.
LAYERS = ("Calico", "cert-manager", "Istio", "Knative Serving", "KServe")
# Layers that must not skip a minor (and cert-manager, which recommends it).
ONE_MINOR_AT_A_TIME = ("cert-manager", "Istio", "Knative Serving")
_ISTIO_IN_PLACE_PAGE = ("https://istio.io/latest/docs/setup/upgrade/in-place/ (each intermediate "
                        "minor) and " + _ISTIO_PAGE)
_KNATIVE_UPGRADE_PAGE = "https://knative.dev/docs/install/upgrade/ (one minor at a time)"
_CERT_MANAGER_UPGRADE_PAGE = ("https://cert-manager.io/docs/installation/upgrade/ (one minor at a "
                              "time, newest patch) and " + _CERT_MANAGER_PAGE)
_KSERVE_UPGRADE_PAGE = "https://kserve.github.io/website/docs/install/upgrade-guide"
_CALICO_UPGRADE_PAGE = ("https://docs.tigera.io/calico/{}/operations/upgrading/kubernetes-upgrade "
                        "(from v3.15 or later: no intermediate minor)")


@dataclass(frozen=True)
class LayerStep:
    layer: str  # one of LAYERS
    version: str
    when: str  # BEFORE, AFTER or EITHER (the Kubernetes upgrade of the move)
    page: str
    net_istio: str = ""  # Knative Serving steps: the net-istio release installed with it


def _knative(serving: str, net_istio: str, when: str) -> LayerStep:
    return LayerStep("Knative Serving", f"knative-v{serving}", when,
                     f"{_KNATIVE_UPGRADE_PAGE}; {_KNATIVE_PAGE}", f"knative-v{net_istio}")


# The move to a train (its Kubernetes minor) -> the steps, each layer's in order; each layer's
# last step is that train's version (tests/test_layer_path.py checks it, and every step
# against SUPPORT and NET_ISTIO_TESTED_ISTIO).
LAYER_PATHS: dict[str, tuple[LayerStep, ...]] = {
    "1.32": (
        LayerStep("Calico", "v3.30.7", EITHER, _CALICO_UPGRADE_PAGE.format("3.30")),
        LayerStep("cert-manager", "v1.17.4", EITHER, _CERT_MANAGER_UPGRADE_PAGE),
        LayerStep("cert-manager", "v1.18.6", EITHER, _CERT_MANAGER_UPGRADE_PAGE),
        LayerStep("cert-manager", "v1.19.6", EITHER, _CERT_MANAGER_UPGRADE_PAGE),
        LayerStep("Istio", "1.25.5", BEFORE, _ISTIO_IN_PLACE_PAGE),  # 1.24 stops at 1.31
        LayerStep("Istio", "1.26.8", EITHER, _ISTIO_IN_PLACE_PAGE),
        _knative("1.18.2", "1.18.1", BEFORE),  # pairs with Istio 1.25
        _knative("1.19.9", "1.19.6", AFTER),  # knative/pkg release-1.19: Kubernetes >= 1.32
        LayerStep("KServe", "v0.15.2", EITHER, _KSERVE_UPGRADE_PAGE),
    ),
    "1.33": (
        LayerStep("Calico", "v3.31.7", EITHER, _CALICO_UPGRADE_PAGE.format("3.31")),
        LayerStep("cert-manager", "v1.20.3", EITHER, _CERT_MANAGER_UPGRADE_PAGE),
        LayerStep("Istio", "1.27.9", EITHER, _ISTIO_IN_PLACE_PAGE),
        LayerStep("Istio", "1.28.10", EITHER, _ISTIO_IN_PLACE_PAGE),
        _knative("1.20.3", "1.20.4", EITHER),
        _knative("1.21.3", "1.21.3", AFTER),  # Kubernetes >= 1.33
        LayerStep("KServe", "v0.16.0", EITHER, _KSERVE_UPGRADE_PAGE),
    ),
    "1.34": (
        LayerStep("cert-manager", "v1.21.1", EITHER, _CERT_MANAGER_UPGRADE_PAGE),
        LayerStep("Istio", "1.29.6", EITHER, _ISTIO_IN_PLACE_PAGE),
        _knative("1.22.1", "1.22.0", AFTER),  # Kubernetes >= 1.34
        LayerStep("KServe", "v0.17.1", EITHER, _KSERVE_UPGRADE_PAGE),
    ),
    "1.35": (
        LayerStep("Calico", "v3.32.1", EITHER, _CALICO_UPGRADE_PAGE.format("3.32")),
        LayerStep("KServe", "v0.20.0", EITHER, _KSERVE_UPGRADE_PAGE),
    ),
}


def train_layer_versions(train: Train) -> dict[str, str]:
    """Layer -> the version the train installs (the keys of LAYERS)."""
    return {"Calico": train.calico_version, "cert-manager": train.cert_manager_version,
            "Istio": train.istio_version, "Knative Serving": train.knative_serving_version,
            "KServe": train.kserve_version}


def support_of(layer: str, version: str) -> Support | None:
    """The SUPPORT line of a layer's version (None: the layer states no range)."""
    return next((s for s in SUPPORT if s.component == layer and s.covers(version)), None)
