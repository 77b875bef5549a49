"""The session guard (tests/tree_guard.py) fails a run that leaves files in the tree."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
LEAVES_AN_EMPTY_DIRECTORY = """
from pathlib import Path
def test_leaves_something():
    (Path(__file__).parent / ".pulumi-state").mkdir()
"""
LEAVES_AN_IGNORED_FILE = """
from pathlib import Path
def test_leaves_something():
    (Path(__file__).parent / ".pulumi-state").mkdir()
    (Path(__file__).parent / ".pulumi-state" / "meta.yaml").write_text("x")
"""
LEAVES_AN_UNTRACKED_FILE = """
from pathlib import Path
def test_leaves_something():
    (Path(__file__).parent / "notes.txt").write_text("x")
"""
CLEANS_UP = """
from pathlib import Path
def test_cleans_up():
    made = Path(__file__).parent / "scratch.txt"
    made.write_text("x")
    made.unlink()
"""


def run_in_repo(tmp_path, test_text, extra_env=None):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pytest.ini").write_text("[pytest]\n")
    (repo / ".gitignore").write_text("/.pulumi-state/\n")
    (repo / "test_it.py").write_text(test_text)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "base"], check=True)
    env = dict(os.environ, PYTHONPATH=str(TESTS), PYTHONDONTWRITEBYTECODE="1", **(extra_env or {}))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tree_guard",
                           "-p", "no:cacheprovider", str(repo)],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("test_text, shown", [
    (LEAVES_AN_EMPTY_DIRECTORY, "directory .pulumi-state/"),  # what scripts/up.sh used to leave
    (LEAVES_AN_IGNORED_FILE, "!! .pulumi-state/meta.yaml"),
    (LEAVES_AN_UNTRACKED_FILE, "?? notes.txt"),
])
def test_anything_left_behind_fails_the_run_and_is_named(tmp_path, test_text, shown):
    result = run_in_repo(tmp_path, test_text)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "1 passed" in result.stdout  # the test itself passed: the guard failed the run
    assert "left the working tree changed" in result.stdout
    assert f"  {shown}" in result.stdout


def test_a_session_that_cleans_up_passes(tmp_path):
    result = run_in_repo(tmp_path, CLEANS_UP)
    assert result.returncode == 0, result.stdout
    assert "working tree changed" not in result.stdout


def test_a_tree_git_refuses_to_read_fails_the_run_instead_of_passing_unchecked(tmp_path):
    # As when root runs git in a checkout another user owns ("dubious ownership"):
    # the tree has a .git, but git will not read it.
    result = run_in_repo(tmp_path, CLEANS_UP, extra_env={"GIT_DIR": str(tmp_path / "nowhere")})
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    assert "could not check that the tests leave the working tree as they found it" in result.stdout
