"""A pytest plugin: the test session leaves the working tree as it found it.

When the session starts it takes a snapshot of `git status` in the rootdir
(untracked, ignored and changed files), and when it ends it compares; anything
new fails the run and is listed. What running Python and pytest make by
themselves is left out. Outside a git work tree it does nothing.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

# venv/ (scripts/test.sh makes it), bytecode and pytest's cache.
EXCLUDED = (":(exclude)venv", ":(exclude).venv", ":(exclude,glob)**/__pycache__/**",
            ":(exclude).pytest_cache")
_BEFORE = pytest.StashKey[Optional[set]]()
_ERROR = pytest.StashKey[str]()


def _git(root: Path, *args: str) -> list[str]:
    result = subprocess.run(["git", "-C", str(root), *args, "--", ".", *EXCLUDED],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed in {root}: {result.stderr.strip()}")
    return result.stdout.splitlines()


def snapshot(root: Path) -> Optional[set[str]]:
    """What `git status` shows of the tree at `root` (every untracked, ignored and
    changed file), plus the directories it does not show: git tracks files, so an
    empty directory appears only in `git ls-files --others --directory`.
    None when `root` is not a git work tree (an unpacked archive)."""
    if not (root / ".git").exists():
        return None
    status = _git(root, "status", "--porcelain", "--ignored", "--untracked-files=all")
    others = _git(root, "ls-files", "--others", "--directory")
    return set(status) | {f"directory {line}" for line in others if line.endswith("/")}


def _fail(session, title: str, message: str) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", title, red=True)
        reporter.write_line(message)
    else:
        print(message, file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_sessionstart(session):
    try:
        session.stash[_BEFORE] = snapshot(session.config.rootpath)
    except RuntimeError as error:  # e.g. git's "dubious ownership" when root runs it
        session.stash[_ERROR] = str(error)


def pytest_sessionfinish(session, exitstatus):
    if _ERROR in session.stash:
        _fail(session, "working tree not checked",
              f"could not check that the tests leave the working tree as they found it: "
              f"{session.stash[_ERROR]}")
        return
    before = session.stash.get(_BEFORE, None)
    if before is None:
        return
    after = snapshot(session.config.rootpath)
    if after - before:
        _fail(session, "working tree changed",
              "the test session left the working tree changed (a test must clean up after "
              "itself, or work in a temporary directory):\n" +
              "\n".join(f"  {line}" for line in sorted(after - before)))
