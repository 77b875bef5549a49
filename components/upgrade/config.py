"""`kserve-cluster:upgrade`: how many workers are upgraded at once, and how long a
drain may take. Pure: no Pulumi."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from components.problems import Problems, check_mapping, is_whole_number

UPGRADE_KEYS = {"maxUnavailable", "drainTimeout"}
DEFAULT_MAX_UNAVAILABLE = 1
DEFAULT_DRAIN_TIMEOUT = "10m"

# A Go duration (time.ParseDuration), which `kubectl drain --timeout` takes: one or
# more <number><unit>, e.g. 10m, 1h30m, 90s, 2.5m.
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


@dataclass(frozen=True)
class UpgradeConfig:
    max_unavailable: int = DEFAULT_MAX_UNAVAILABLE
    drain_timeout: str = DEFAULT_DRAIN_TIMEOUT


def duration_seconds(text: str) -> float | None:
    """Seconds of a Go duration, or None when it is not one."""
    if not isinstance(text, str) or not text:
        return None
    position, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position == len(text) else None


def parse_upgrade_config(problems: Problems, raw: Any, worker_count: int) -> UpgradeConfig:
    section = check_mapping(problems, "upgrade", raw,
                            "give {maxUnavailable, drainTimeout}, e.g. {maxUnavailable: 1}.")
    problems.unknown_keys("upgrade", section, UPGRADE_KEYS)
    max_unavailable = DEFAULT_MAX_UNAVAILABLE
    given = section.get("maxUnavailable")
    if given is not None:
        limit = max(worker_count, 1)
        if not is_whole_number(given):
            problems.add("upgrade.maxUnavailable", given, "not a whole number.",
                         f"give how many workers may be drained at once, 1-{limit}.")
        elif given < 1:
            problems.add("upgrade.maxUnavailable", given,
                         "below 1: no worker could ever be upgraded.",
                         f"give a whole number from 1 to {limit} (the default is 1).")
        elif given > limit:
            problems.add("upgrade.maxUnavailable", given,
                         f"above the stack's worker count ({worker_count}): every model "
                         "would lose all its replicas at once.",
                         f"give a whole number from 1 to {limit}.")
        else:
            max_unavailable = given
    drain_timeout = DEFAULT_DRAIN_TIMEOUT
    given = section.get("drainTimeout")
    if given is not None:
        seconds = duration_seconds(given) if isinstance(given, str) else None
        if seconds is None:
            problems.add("upgrade.drainTimeout", given, "not a duration.",
                         "write it as kubectl's --timeout takes it, e.g. 10m, 90s or 1h30m.")
        elif seconds <= 0:
            problems.add("upgrade.drainTimeout", given,
                         "zero: kubectl drain would wait for ever on a pod that cannot leave.",
                         "give a positive duration, e.g. 10m.")
        else:
            drain_timeout = given
    return UpgradeConfig(max_unavailable=max_unavailable, drain_timeout=drain_timeout)
