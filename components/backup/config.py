"""`kserve-cluster:backup`: when the control planes snapshot etcd, how many they
keep, and an optional NFS export that gets a copy.

Pure: no Pulumi. The schedule is a systemd OnCalendar expression. Where this
machine has `systemd-analyze` it is the judge (`systemd-analyze calendar`, the
same parser the nodes' systemd uses); elsewhere `calendar_subset_problem`
accepts a documented subset of the grammar, and the install script on the node
runs `systemd-analyze calendar` again before it writes the timer.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any, Callable, Optional

from components.problems import Problems, check_mapping, check_nfs_export, is_whole_number

BACKUP_KEYS = {"schedule", "keep", "nfs"}
BACKUP_NFS_KEYS = {"server", "path"}

DEFAULT_SCHEDULE = "*-*-* 00/6:00:00"  # every 6 hours, on the hour
DEFAULT_KEEP = 12
# Where the snapshots live on each control plane (root-only, files 0600).
SNAPSHOT_DIR = "/var/lib/kserve-cluster/etcd-snapshots"
# The largest `keep` taken: more is a typo (a snapshot is the whole etcd database).
MAX_KEEP = 1000


@dataclass(frozen=True)
class BackupConfig:
    schedule: str = DEFAULT_SCHEDULE
    keep: int = DEFAULT_KEEP
    nfs_server: str = ""
    nfs_path: str = ""

    @property
    def nfs(self) -> bool:
        return bool(self.nfs_server)


# ------------------------------------------------------------ the schedule

# The shorthands systemd.time(7) lists, and the weekday names it accepts.
SHORTHANDS = {"minutely", "hourly", "daily", "monthly", "weekly", "yearly", "annually",
              "quarterly", "semiannually"}
_DAYS = "mon|tue|wed|thu|fri|sat|sun|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DAY = rf"(?:{_DAYS})"
_WEEKDAYS = re.compile(rf"^{_DAY}(?:\.\.{_DAY})?(?:,{_DAY}(?:\.\.{_DAY})?)*$", re.I)
# One component of a date or a time: `*`, a number, a range a..b, a repetition
# a/b or */b, or a comma list of those.
_NUM = r"\d+"
_ITEM = rf"(?:\*|{_NUM}(?:\.\.{_NUM})?)(?:/{_NUM})?"
_COMPONENT = rf"{_ITEM}(?:,{_ITEM})*"
_DATE = re.compile(rf"^(?:(?:{_COMPONENT})-)?{_COMPONENT}-{_COMPONENT}$")
_TIME = re.compile(rf"^{_COMPONENT}:{_COMPONENT}(?::{_COMPONENT}(?:\.\d+)?)?$")


def calendar_subset_problem(text: str) -> Optional[str]:
    """Why `text` is outside the OnCalendar subset this project accepts without
    systemd-analyze, or None. The subset: a shorthand (`daily`, `hourly`, ...),
    or `[WEEKDAYS] [[YYYY-]MM-DD] [hh:mm[:ss]]` (at least a date or a time)
    whose components are `*`, numbers, `a..b` ranges, `a/b` repetitions and
    comma lists, with time values in range (hours < 24, minutes and seconds < 60).
    Time zones and `~` (days from the end of a month) need systemd-analyze."""
    words = text.split()
    if len(words) == 1 and words[0].lower() in SHORTHANDS:
        return None
    if words and _WEEKDAYS.match(words[0]):
        words = words[1:]
    date = time = None
    for word in words:
        if time is None and date is None and _DATE.match(word):
            date = word
        elif time is None and _TIME.match(word):
            time = word
        else:
            return f"cannot read {word!r} as a weekday, a date (Y-M-D) or a time (h:m:s)"
    if date is None and time is None:
        return "names neither a date nor a time"
    if time is not None:
        for value, limit in zip(time.split(":"), (24, 60, 60)):
            for item in value.split(","):
                # a/b: a is a value of the field, b a step; a..b: both are values
                for number in re.findall(r"\d+", item.split("/")[0].split(".")[0]
                                         if "/" in item else item):
                    if int(number) >= limit:
                        return f"{number} is out of range in the time {time!r}"
    return None


def systemd_calendar_problem(text: str, tool: Optional[str] = None) -> Optional[str]:
    """What `systemd-analyze calendar` says about `text` (None: it parses)."""
    tool = tool or shutil.which("systemd-analyze")
    assert tool
    result = subprocess.run([tool, "calendar", "--", text], capture_output=True, text=True,
                            timeout=10)
    if result.returncode == 0:
        return None
    lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
    return f"systemd-analyze calendar: {lines[-1] if lines else 'refused'}"


def schedule_problem(text: str, which: Callable[[str], Optional[str]] = shutil.which) -> Optional[str]:
    """Why systemd would refuse `text` as OnCalendar=, or None."""
    if any(ord(c) < 32 for c in text) or not text.strip():
        return "holds a line break or another control character, or is empty"
    tool = which("systemd-analyze")
    if tool:
        return systemd_calendar_problem(text, tool)
    return calendar_subset_problem(text)


# ------------------------------------------------------------ the section

SCHEDULE_FIX = ("give a systemd OnCalendar expression (man systemd.time), e.g. "
                f"'{DEFAULT_SCHEDULE}' (every 6 hours) or 'daily'; "
                "check it with `systemd-analyze calendar '<expr>'`.")


def parse_backup_config(problems: Problems, raw: Any,
                        which: Callable[[str], Optional[str]] = shutil.which) -> BackupConfig:
    backup = check_mapping(problems, "backup", raw,
                           f"give {{schedule: '{DEFAULT_SCHEDULE}', keep: {DEFAULT_KEEP}}}, "
                           "or remove the key for these defaults.")
    problems.unknown_keys("backup", backup, BACKUP_KEYS)
    schedule = backup.get("schedule", DEFAULT_SCHEDULE)
    if not isinstance(schedule, str):
        problems.add("backup.schedule", schedule, "must be a string.", SCHEDULE_FIX)
        schedule = DEFAULT_SCHEDULE
    else:
        why = schedule_problem(schedule, which)
        if why:
            problems.add("backup.schedule", schedule, f"systemd cannot parse it ({why}).",
                         SCHEDULE_FIX)
            schedule = DEFAULT_SCHEDULE
    keep = backup.get("keep", DEFAULT_KEEP)
    if not is_whole_number(keep) or not 1 <= keep <= MAX_KEEP:
        problems.add("backup.keep", keep,
                     "must be a whole number of snapshots from 1 to "
                     f"{MAX_KEEP}" + (" (0 would delete every snapshot)." if keep == 0 else "."),
                     f"give how many snapshots each control plane keeps, e.g. {DEFAULT_KEEP} "
                     "(two days at the default schedule).")
        keep = DEFAULT_KEEP
    nfs = check_mapping(problems, "backup.nfs", backup.get("nfs"),
                        "give {server: 10.0.2.5, path: /srv/backups}, or remove it.")
    problems.unknown_keys("backup.nfs", nfs, BACKUP_NFS_KEYS)
    server, path = check_nfs_export(problems, "backup.nfs", nfs, "/srv/backups") if nfs else ("", "")
    return BackupConfig(schedule=schedule, keep=keep, nfs_server=server, nfs_path=path)


def snapshots_to_drop(names: list[str], keep: int) -> list[str]:
    """The snapshots retention removes: all but the newest `keep`. Names sort by
    time (etcd-<UTC yyyymmddThhmmssZ>-<node>.db), so the oldest come first."""
    ordered = sorted(names)
    return ordered[:max(0, len(ordered) - keep)]
