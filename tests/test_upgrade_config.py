"""`upgrade.maxUnavailable` and `upgrade.drainTimeout`: defaults and refusals."""
import copy

import pytest

from components.stack_config import ConfigError, parse_stack_config
from components.upgrade.config import duration_seconds

LAB = {
    "nodes": [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"},
              {"name": "worker1", "address": "10.0.2.22", "role": "worker"},
              {"name": "worker2", "address": "10.0.2.23", "role": "worker"}],
}


def parse(upgrade=None, nodes=None):
    raw = copy.deepcopy(LAB)
    if nodes is not None:
        raw["nodes"] = nodes
    if upgrade is not None:
        raw["upgrade"] = upgrade
    return parse_stack_config(raw, has_secret_private_key=True)


def problems_of(upgrade, nodes=None):
    with pytest.raises(ConfigError) as caught:
        parse(upgrade, nodes)
    return caught.value.problems


def test_defaults():
    config = parse()
    assert config.upgrade.max_unavailable == 1
    assert config.upgrade.drain_timeout == "10m"


def test_values_are_taken():
    config = parse({"maxUnavailable": 2, "drainTimeout": "1h30m"})
    assert (config.upgrade.max_unavailable, config.upgrade.drain_timeout) == (2, "1h30m")


@pytest.mark.parametrize("value, what", [(0, "below 1"), (-1, "below 1"),
                                         (3, "above the stack's worker count (2)"),
                                         ("2", "not a whole number"), (1.5, "not a whole number"),
                                         (True, "not a whole number")])
def test_max_unavailable_refused(value, what):
    [problem] = problems_of({"maxUnavailable": value})
    assert problem.startswith(f"kserve-cluster:upgrade.maxUnavailable = {value!r}: ")
    assert what in problem and "Fix: " in problem
    assert "1 to 2" in problem or "1-2" in problem


def test_max_unavailable_on_a_single_node_stack():
    single = [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}]
    assert parse({"maxUnavailable": 1}, single).upgrade.max_unavailable == 1
    [problem] = problems_of({"maxUnavailable": 2}, single)
    assert "above the stack's worker count (0)" in problem


@pytest.mark.parametrize("value", ["10", "ten minutes", "10 m", "-5m", "1d", "", 600, "m"])
def test_drain_timeout_that_is_not_a_duration(value):
    [problem] = problems_of({"drainTimeout": value})
    assert f"upgrade.drainTimeout = {value!r}: not a duration." in problem
    assert "e.g. 10m, 90s or 1h30m" in problem


def test_zero_drain_timeout_would_wait_for_ever():
    [problem] = problems_of({"drainTimeout": "0s"})
    assert "wait for ever" in problem


def test_unknown_key_and_every_problem_at_once():
    found = problems_of({"maxUnavailble": 1, "drainTimeout": "soon"})
    assert len(found) == 2
    assert any("did you mean 'maxUnavailable'" in p for p in found)


@pytest.mark.parametrize("text, seconds", [("10m", 600), ("90s", 90), ("1h30m", 5400),
                                           ("2.5m", 150), ("1h0m0s", 3600), ("500ms", 0.5)])
def test_go_durations(text, seconds):
    assert duration_seconds(text) == pytest.approx(seconds)
