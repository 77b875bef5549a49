"""Tests that need upstream files or helm (components/upstream.py) go through here.

A missing source skips the test with its reason, or fails it where
KSERVE_UPSTREAM_REQUIRED=1 says the upstream files can be had (CI after the fetch;
.ci/run beside ../shared/upstream) and the source is one ../shared/upstream holds
(upstream.EXPECTED). Either call `need(found)` in a test or fixture, or mark a test
or module with `needs(found)` (checked before the test runs, like the lab's
KSERVE_LAB_REQUIRED in tests/lab/fixtures.py).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from components import upstream

MARK = "upstream"


def need(found: upstream.Found) -> Path:
    """found.path, or skip/fail the running test with found.reason."""
    outcome = upstream.verdict(found, upstream.required())
    if outcome == "skip":
        pytest.skip(found.reason)
    if outcome == "fail":
        pytest.fail(f"upstream source missing but {upstream.REQUIRED_ENV}=1: {found.reason}",
                    pytrace=False)
    return found.path


def needs(found: upstream.Found) -> pytest.MarkDecorator:
    """A mark for a test or module (pytestmark) that needs `found`."""
    return getattr(pytest.mark, MARK)(found)


def pytest_runtest_setup(item):
    for mark in item.iter_markers(MARK):
        need(mark.args[0])
