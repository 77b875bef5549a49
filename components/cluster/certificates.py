"""The control plane's certificates: how long kubeadm issues them for, when the
renewal timer renews them, and what `kubeadm certs check-expiration -o json`
says about them (pure: no Pulumi, nothing touches a node).

Only the certificates kubeadm signs with its CAs (API server, etcd, front
proxy, the kubeconfig files' client certificates) follow
`certificateValidityDays`. The CAs keep kubeadm's default life (ten years,
`caCertificateValidityPeriod` left unset): `kubeadm certs renew` does not renew
a CA, so shortening it would only bring the day everything must be re-issued
closer.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

from components.problems import Problems, check_int

DEFAULT_VALIDITY_DAYS = 365
DEFAULT_RENEW_BEFORE_DAYS = 30
# kubeadm accepts any duration but warns above its default of 8760h (365 days)
# ("more than the recommended default"). The upper bound here is the CA's
# default life: a certificate must not outlive the CA that signed it.
MAX_VALIDITY_DAYS = 3650
MIN_VALIDITY_DAYS = 2  # one day of life left after a renewal at the earliest setting
KUBEADM_RECOMMENDED_MAX_DAYS = 365

VALIDITY_KEY = "kubernetes.certificateValidityDays"
RENEW_BEFORE_KEY = "kubernetes.renewCertificatesBeforeDays"
KEYS = {"certificateValidityDays", "renewCertificatesBeforeDays"}

# What the facts script reports instead of kubeadm's JSON.
NO_CLUSTER = "none"          # no control plane on this node yet: nothing to show
NEEDS_ROOT = "needs-root"    # `sudo -n` refused: root-only files stay unread
UNREADABLE = "unreadable"    # kubeadm failed or printed something else


@dataclass(frozen=True)
class CertificateSettings:
    validity_days: int = DEFAULT_VALIDITY_DAYS
    renew_before_days: int = DEFAULT_RENEW_BEFORE_DAYS

    @property
    def validity_period(self) -> str:
        """kubeadm's `certificateValidityPeriod`, a Go duration as kubeadm itself writes it."""
        return f"{self.validity_days * 24}h0m0s"


def parse_certificate_settings(problems: Problems, k8s: dict) -> CertificateSettings:
    validity = check_int(
        problems, VALIDITY_KEY, k8s.get("certificateValidityDays"), DEFAULT_VALIDITY_DAYS,
        MIN_VALIDITY_DAYS, MAX_VALIDITY_DAYS,
        f"give whole days from {MIN_VALIDITY_DAYS} to {MAX_VALIDITY_DAYS} (the CA's own ten "
        f"years), or remove the key for kubeadm's {DEFAULT_VALIDITY_DAYS}.")
    renew = check_int(
        problems, RENEW_BEFORE_KEY, k8s.get("renewCertificatesBeforeDays"),
        DEFAULT_RENEW_BEFORE_DAYS, 1, MAX_VALIDITY_DAYS - 1,
        f"give whole days, at least 1 and below {VALIDITY_KEY}, or remove the key for "
        f"{DEFAULT_RENEW_BEFORE_DAYS}.")
    if renew >= validity:
        problems.add(RENEW_BEFORE_KEY, renew,
                     f"not below {VALIDITY_KEY} ({validity}): a renewed certificate "
                     "would be due again at once, so the timer would renew on every run.",
                     f"use fewer days than {validity}, e.g. {max(1, min(30, validity // 4))}, "
                     f"or raise {VALIDITY_KEY}.")
        renew = max(1, validity // 4)
    if validity > KUBEADM_RECOMMENDED_MAX_DAYS:
        problems.warn(VALIDITY_KEY, validity,
                      f"more than kubeadm's recommended {KUBEADM_RECOMMENDED_MAX_DAYS} days "
                      "(kubeadm warns about it at init); a stolen client certificate "
                      "stays good that long.",
                      f"keep {KUBEADM_RECOMMENDED_MAX_DAYS} or less unless you must.")
    return CertificateSettings(validity, renew)


# ---------------------------------------------------------------- expiry

@dataclass(frozen=True)
class Expiry:
    """The earliest-expiring certificate on a control plane (CAs included)."""
    name: str
    expires: datetime
    seconds_left: int

    @property
    def days_left(self) -> float:
        return self.seconds_left / 86400

    @property
    def date(self) -> str:
        return self.expires.strftime("%Y-%m-%d")


def _time(text: Any) -> Optional[datetime]:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def earliest_expiry(document: Any) -> Optional[Expiry]:
    """From `kubeadm certs check-expiration -o json` (kind CertificateExpirationInfo,
    output.kubeadm.k8s.io/v1alpha3): its `certificates` and `certificateAuthorities`,
    each with `name`, `expirationDate` (RFC 3339), `residualTime` (seconds),
    `externallyManaged` and `missing`. Missing and externally managed ones are
    left out (kubeadm renews neither). None when there is nothing to show."""
    if not isinstance(document, dict):
        return None
    found: list[Expiry] = []
    for group in ("certificates", "certificateAuthorities"):
        for cert in document.get(group) or []:
            if not isinstance(cert, dict) or cert.get("missing") or cert.get("externallyManaged"):
                continue
            when = _time(cert.get("expirationDate"))
            left = cert.get("residualTime")
            if when is None or not isinstance(left, int):
                continue
            found.append(Expiry(str(cert.get("name", "?")), when, left))
    return min(found, key=lambda e: e.seconds_left) if found else None


def decode_expiration_fact(value: str) -> tuple[str, Optional[Expiry]]:
    """The facts script's `cert_expiration` value: `none`, `needs-root`,
    `unreadable`, or kubeadm's JSON in base64. Returns (state, expiry): state is
    one of the three words, or `ok` with the earliest expiry."""
    value = (value or "").strip()
    if value in ("", NO_CLUSTER):
        return NO_CLUSTER, None
    if value in (NEEDS_ROOT, UNREADABLE):
        return value, None
    try:
        text = base64.b64decode(value, validate=True).decode()
        # kubeadm prints nothing but the object with -o json; be lenient about
        # anything before its first brace all the same.
        document = json.loads(text[text.index("{"):])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return UNREADABLE, None
    expiry = earliest_expiry(document)
    return ("ok", expiry) if expiry else (UNREADABLE, None)


def expiry_verdict(expiry: Expiry, renew_before_days: int) -> tuple[bool, str]:
    """(warn, message) for a control plane's earliest expiry."""
    days = expiry.days_left
    if expiry.seconds_left <= 0:
        return True, (f"certificate {expiry.name} EXPIRED on {expiry.date}: the API server "
                      "refuses clients. Renew now: see docs/operations.md, "
                      "\"What happens on day 365\".")
    if days < renew_before_days:
        return True, (f"certificate {expiry.name} expires on {expiry.date}, in {days:.0f} "
                      f"day(s), under {RENEW_BEFORE_KEY} ({renew_before_days}): the renewal "
                      "timer should have renewed it. Check `systemctl status "
                      "kserve-cert-renewal.timer` and `journalctl -u kserve-cert-renewal` on "
                      "the node, or renew by hand (docs/operations.md).")
    return False, f"earliest certificate expiry {expiry.date} ({expiry.name}, {days:.0f} days)"
