"""pytest pieces for the SSH lab tests (tests/test_lab_*.py import them)."""
from __future__ import annotations

import pytest

from lab.nodes import Lab, unavailable_reason
from lab.runner import LabRunner, SshExecutor, lab_runner

UNAVAILABLE = unavailable_reason()

# Every lab test: marked `lab`, skipped with the reason when this machine cannot run it.
lab_marks = [pytest.mark.lab,
             pytest.mark.skipif(UNAVAILABLE is not None, reason=f"SSH lab unavailable: {UNAVAILABLE}")]


@pytest.fixture
def lab():
    """An empty lab; tests start the nodes they need. Torn down even when the test fails."""
    with Lab() as started:
        yield started


def runner_for(lab: Lab) -> LabRunner:
    # Short dial back-off: a node that is late comes up within a second or two here.
    return lab_runner(lab, executor=SshExecutor(dial_backoff=0.1, max_backoff=0.5))


def up(lab: Lab, runner: LabRunner, names=None, **config_options):
    return runner.up(lab.stack_config(names, **config_options), lab.key.private_openssh)
