"""The certificate renewal timer on a control plane, and when `up` reads the
admin kubeconfig again.

The timer (scripts/node/cert-renewal.sh installs it, cert-renewal-remove.sh
removes it) renews the certificates on the node, so a cluster nobody runs
`pulumi up` against still lives past day 365. The admin kubeconfig the stack
exports carries a client certificate that renewal replaces: `up` reads it again
on its first run of each half renewal window (see `kubeconfig_read_triggers`).
"""
from __future__ import annotations

import datetime
import hashlib
from typing import Optional

import pulumi
from pulumi_command import remote

from components.cluster.certificates import CertificateSettings
from components.cluster.commands import node_command
from components.cluster.node_scripts import script_text

RENEW_PROGRAM = "cert-renew.sh"

REMOVE_SCRIPT = "cert-renewal-remove.sh"


def renewal_inputs(settings: CertificateSettings, login_user: str) -> dict[str, str]:
    return {"RENEW_BEFORE_DAYS": str(settings.renew_before_days), "LOGIN_USER": login_user}


def program_digest() -> str:
    return hashlib.sha256(script_text(RENEW_PROGRAM).encode()).hexdigest()


def read_period_days(settings: CertificateSettings) -> int:
    """How often `up` reads admin.conf again: every half renewal window. A renewed
    admin certificate is then in the output while the old one is still valid (it
    is renewed `renewCertificatesBeforeDays` ahead), and a preview shows that read
    being replaced only once a period, not on every run."""
    return max(1, settings.renew_before_days // 2)


def kubeconfig_read_triggers(init_id: pulumi.Input[str], settings: CertificateSettings,
                             today: Optional[datetime.date] = None) -> list:
    """Read admin.conf again when the control plane is re-initialised, and on
    the first `up` of each period (`read_period_days`). The node renews its
    certificates on its own schedule, so nothing in the stack changes when it
    does. The output itself changes only when the file did."""
    day = today or datetime.datetime.now(datetime.timezone.utc).date()
    period = read_period_days(settings)
    start = day - datetime.timedelta(days=day.toordinal() % period)
    return [init_id, f"read in the {period}-day period from {start.isoformat()}"]


def certificate_renewal(name: str, connection: remote.ConnectionArgs, login_user: str,
                        settings: CertificateSettings, init: remote.Command,
                        parent: pulumi.Resource,
                        deleted_with: Optional[pulumi.Resource] = None) -> remote.Command:
    """`<name>-cert-renewal`, after kubeadm init; its delete removes the timer (or
    `deleted_with`'s delete does: a leaving control plane's reset)."""
    return node_command(
        f"{name}-cert-renewal", connection, "cert-renewal.sh",
        renewal_inputs(settings, login_user),
        stdin=script_text(RENEW_PROGRAM),
        delete_script=REMOVE_SCRIPT,
        # Installed again on a new control plane, a new renewal program or setting.
        triggers=[init.id, program_digest(), str(settings.renew_before_days)],
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=[init], deleted_with=deleted_with,
            # A replacement must not remove the timer its replacement just installed.
            delete_before_replace=True))
