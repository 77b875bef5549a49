"""pytest pieces for the SSH lab tests (tests/test_lab_*.py import them).

Whether this machine can run the lab is found out only when a lab test is about to
run (the probe runs `unshare` and binds port 22 of a loopback address), so that
`-m "not lab"`, or any run that selects no lab test, does neither.
"""
from __future__ import annotations

import functools
import os
from typing import Optional

import pytest

from lab.nodes import Lab, unavailable_reason
from lab.runner import LabRunner, SshExecutor, lab_runner

# Set where the lab must run (CI): the lab tests then fail with the reason instead
# of being skipped, so that a machine that lost the lab cannot pass quietly.
REQUIRED_ENV = "KSERVE_LAB_REQUIRED"

# Every lab test module: `pytestmark = lab_marks`.
lab_marks = [pytest.mark.lab]


@functools.lru_cache(maxsize=None)
def unavailable() -> Optional[str]:
    """Why this machine cannot run the lab, or None; probed once, on first use."""
    return unavailable_reason()


def required() -> bool:
    return os.environ.get(REQUIRED_ENV) == "1"


def verdict(unavailable_because: Optional[str], is_required: bool) -> str:
    """What a lab test does here: "run", "skip" (with the reason) or "fail"."""
    if unavailable_because is None:
        return "run"
    return "fail" if is_required else "skip"


def pytest_runtest_setup(item):
    if item.get_closest_marker("lab") is None:
        return
    reason = unavailable()
    outcome = verdict(reason, required())
    if outcome == "skip":
        pytest.skip(f"SSH lab unavailable: {reason}")
    if outcome == "fail":
        pytest.fail(f"SSH lab unavailable but {REQUIRED_ENV}=1: {reason}", pytrace=False)


@pytest.fixture
def lab():
    """An empty lab; tests start the nodes they need. Torn down even when the test fails."""
    if unavailable() is not None:
        pytest.fail(f"SSH lab unavailable: {unavailable()}", pytrace=False)
    with Lab() as started:
        yield started


def runner_for(lab: Lab) -> LabRunner:
    # Short dial back-off: a node that is late comes up within a second or two here.
    return lab_runner(lab, executor=SshExecutor(dial_backoff=0.1, max_backoff=0.5))


def up(lab: Lab, runner: LabRunner, names=None, **config_options):
    return runner.up(lab.stack_config(names, **config_options), lab.key.private_openssh)
