"""When and how a member's kubeconfig is issued (pure).

The control plane issues it with `kubeadm kubeconfig user` (kubeadm v1.31): a
client certificate signed by the cluster CA, CN the member's name, O their
projects. A certificate cannot be revoked, so its validity is short and it is
renewed by `pulumi up` itself, without making every run issue a new one:

Time is cut into renewal periods of `validity - renewBefore` days, counted from
1970-01-01 (UTC). The period's number is a trigger of the issuing step, so the
step runs again at the first `pulumi up` of each new period and at no other
time (two runs in one period give identical inputs: no diff). A certificate
issued in period k is valid for `validity` days from its issue, and period k+1
starts at most `validity - renewBefore` days after that issue: at that point it
has at least `renewBefore` days left. Run `pulumi up` at least once every
`renewBefore` days and no member's certificate runs out.
"""
from __future__ import annotations

import datetime

import yaml

from components.access.config import AccessSettings
from components.access.project_objects import member_group
from components.cluster.kubeadm_config import KUBEADM_API
from components.stack_config import KubernetesSettings

EPOCH = datetime.date(1970, 1, 1)
# kubeadm's defaults, which the cluster's own kubeconfigs use too.
CLUSTER_NAME = "kubernetes"
CERTIFICATES_DIR = "/etc/kubernetes/pki"


def period_days(settings: AccessSettings) -> int:
    return settings.certificate_validity_days - settings.renew_before_days


def renewal_period(settings: AccessSettings, today: datetime.date) -> int:
    return (today - EPOCH).days // period_days(settings)


def period_start(settings: AccessSettings, period: int) -> datetime.date:
    return EPOCH + datetime.timedelta(days=period * period_days(settings))


def validity_period(settings: AccessSettings) -> str:
    """kubeadm's --validity-period, a Go duration."""
    return f"{settings.certificate_validity_days * 24}h"


def organizations(projects: tuple[str, ...]) -> str:
    """kubeadm's --org: a comma-separated list (the names hold no comma)."""
    return ",".join(member_group(p) for p in sorted(projects))


def cluster_configuration(kubernetes: KubernetesSettings) -> str:
    """The `--config` of `kubeadm kubeconfig user`: where the CA is, the cluster's
    name and the API server address the kubeconfig names. kubernetesVersion is
    set so that kubeadm does not look up the latest release on the internet."""
    return yaml.safe_dump({
        "apiVersion": KUBEADM_API,
        "kind": "ClusterConfiguration",
        "clusterName": CLUSTER_NAME,
        "kubernetesVersion": kubernetes.version_tag,
        "controlPlaneEndpoint": kubernetes.control_plane_endpoint,
        "certificatesDir": CERTIFICATES_DIR,
    }, sort_keys=False)
