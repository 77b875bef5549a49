"""When a member's certificate is issued again: renewal periods (pure)."""
import datetime

import pytest

from components.access import member_certificates as certificates
from components.access.config import AccessSettings


@pytest.mark.parametrize("validity,renew", [(90, 30), (30, 10), (7, 3), (2, 1), (365, 1)])
def test_a_certificate_is_renewed_with_at_least_renew_before_days_left(validity, renew):
    settings = AccessSettings(validity, renew)
    start = datetime.date(2026, 1, 1)
    for offset in range(3 * validity):
        issued = start + datetime.timedelta(days=offset)
        period = certificates.renewal_period(settings, issued)
        # The first day on which `pulumi up` issues the next one.
        renewal = certificates.period_start(settings, period + 1)
        expires = issued + datetime.timedelta(days=validity)
        assert issued < renewal and (expires - renewal).days >= renew, (issued, renewal)
        # ...and no day before that gives another period (no spurious re-issue).
        for day in range((renewal - issued).days):
            assert certificates.renewal_period(settings, issued + datetime.timedelta(days=day)) == period


def test_periods_count_from_1970_in_steps_of_validity_minus_renew_before():
    settings = AccessSettings(90, 30)
    assert certificates.period_days(settings) == 60
    assert certificates.renewal_period(settings, datetime.date(1970, 3, 1)) == 0  # day 59
    assert certificates.renewal_period(settings, datetime.date(1970, 3, 2)) == 1  # day 60
    assert certificates.period_start(settings, 1) == datetime.date(1970, 3, 2)


def test_kubeadm_inputs():
    assert certificates.validity_period(AccessSettings(90, 30)) == "2160h"
    assert certificates.organizations(("team-b", "team-a")) == \
        "kserve-cluster:project:team-a,kserve-cluster:project:team-b"
