"""pytest pieces for the SSH lab tests (tests/test_lab_*.py import them)."""
from __future__ import annotations

import os
from typing import Optional

import pytest

from lab.nodes import Lab, unavailable_reason
from lab.runner import LabRunner, SshExecutor, lab_runner

UNAVAILABLE = unavailable_reason()
# Set where the lab must run (CI): the lab tests then fail with the reason instead
# of being skipped, so that a machine that lost the lab cannot pass quietly.
REQUIRED_ENV = "KSERVE_LAB_REQUIRED"


def marks_for(unavailable: Optional[str], required: bool) -> list:
    """Every lab test: marked `lab`; skipped with the reason when this machine cannot
    run it, unless the lab is required here."""
    if unavailable is None or not required:
        return [pytest.mark.lab, pytest.mark.skipif(unavailable is not None,
                                                    reason=f"SSH lab unavailable: {unavailable}")]
    return [pytest.mark.lab]


lab_marks = marks_for(UNAVAILABLE, os.environ.get(REQUIRED_ENV) == "1")


@pytest.fixture
def lab():
    """An empty lab; tests start the nodes they need. Torn down even when the test fails."""
    if UNAVAILABLE is not None:
        pytest.fail(f"SSH lab unavailable but {REQUIRED_ENV}=1: {UNAVAILABLE}", pytrace=False)
    with Lab() as started:
        yield started


def runner_for(lab: Lab) -> LabRunner:
    # Short dial back-off: a node that is late comes up within a second or two here.
    return lab_runner(lab, executor=SshExecutor(dial_backoff=0.1, max_backoff=0.5))


def up(lab: Lab, runner: LabRunner, names=None, **config_options):
    return runner.up(lab.stack_config(names, **config_options), lab.key.private_openssh)
