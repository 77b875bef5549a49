"""scripts/up.sh, the README's main command, against a stand-in `pulumi` CLI.

The real CLI cannot be downloaded where this is built; the stand-in records the
calls, the environment and the standard input the script gives it. The script
runs in a copy of the project (its venv/ hard-linked from this one, already
current), so the .pulumi-state/ it makes stays out of this working tree.
"""
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from components import project_venv

ROOT = Path(__file__).resolve().parents[1]
FAKE_PULUMI = """#!/usr/bin/env bash
{ printf 'ARGS %s\\n' "$*"
  printf 'BACKEND %s\\n' "$PULUMI_BACKEND_URL"
  printf 'PASSPHRASE-SET %s\\n' "${PULUMI_CONFIG_PASSPHRASE:+yes}"
  if [ "$1 $2" = "config set" ]; then printf 'STDIN %s\\n' "$(cat | head -c 40)"; fi
} >>"$FAKE_PULUMI_LOG"
"""
# Stands in for python3 where the test must see whether the venv step ran.
FAKE_PYTHON = """#!/usr/bin/env bash
printf 'PYTHON %s\\n' "$*" >>"$FAKE_PULUMI_LOG"
"""


@pytest.fixture
def project(tmp_path):
    """What up.sh touches, copied: the script, the stack files, the venv helper."""
    return copy_project(tmp_path / "project")


def copy_project(copy: Path) -> Path:
    for relative in ("scripts/up.sh", "stacks/Pulumi.lab.yaml", "requirements.txt",
                     "components/__init__.py", "components/project_venv.py"):
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, copy / relative)
    return copy


def _link_packages(source, target):
    # The installed packages are hard-linked (fast, nothing writes to them when the
    # requirements are met); bin/ and pyvenv.cfg, which `python -m venv` rewrites in
    # place, are real copies, so that nothing done to the copy reaches this tree's venv.
    if Path(source).relative_to(ROOT / "venv").parts[0] == "lib":
        os.link(source, target)
    else:
        shutil.copy2(source, target)


@pytest.fixture
def venv_copy(project):
    """This tree's venv, copied into the project copy and marked current for its
    requirements.txt, so that the venv step finds nothing to do."""
    if (ROOT / "venv" / "bin" / "python").exists():
        shutil.copytree(ROOT / "venv", project / "venv", symlinks=True, copy_function=_link_packages,
                        ignore=shutil.ignore_patterns(".requirements.sha256"))
        (project / "venv" / ".requirements.sha256").write_text(project_venv._requirements_digest())
    return project


@pytest.fixture
def fake_cli(tmp_path):
    return make_fake_cli(tmp_path)


def make_fake_cli(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(FAKE_PULUMI)
    (bin_dir / "pulumi").chmod(0o755)
    log = tmp_path / "pulumi.log"
    key = tmp_path / "id_test"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", FAKE_PULUMI_LOG=str(log),
               PULUMI_CONFIG_PASSPHRASE="not-a-real-one", SSH_KEY_FILE=str(key))
    return env, log


def with_fake_python(env, tmp_path):
    """On the PATH of `env`, a python3 that only records its arguments: a venv step shows."""
    bin_dir = tmp_path / "bin"
    (bin_dir / "python3").write_text(FAKE_PYTHON)
    (bin_dir / "python3").chmod(0o755)


def run_up(project, env, *args, cwd=None):
    return subprocess.run(["bash", str(project / "scripts" / "up.sh"), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)


def logged(log):
    return log.read_text().splitlines() if log.exists() else []


def test_up_selects_the_stack_stores_the_key_and_runs_pulumi_up(venv_copy, fake_cli):
    project = venv_copy
    env, log = fake_cli
    result = run_up(project, env, "lab", "--yes")
    assert result.returncode == 0, result.stderr
    lines = logged(log)
    args = [line.removeprefix("ARGS ") for line in lines if line.startswith("ARGS ")]
    assert args == ["stack select --create lab --non-interactive",
                    "config set sshPrivateKey --secret --stack lab --",
                    "up --stack lab --yes"]
    # The local file backend by default: no Pulumi account.
    assert {line for line in lines if line.startswith("BACKEND ")} == \
        {f"BACKEND file://{project}/.pulumi-state"}
    assert (project / ".pulumi-state").is_dir()
    assert "STDIN -----BEGIN OPENSSH PRIVATE KEY-----" in lines
    assert "fake" not in result.stdout + result.stderr  # the key is never echoed
    assert (project / "venv" / "bin" / "python").exists()


def test_a_backend_given_by_the_user_is_kept_and_no_state_directory_is_made(venv_copy, fake_cli):
    project = venv_copy
    env, log = fake_cli
    env["PULUMI_BACKEND_URL"] = "s3://team-state"
    assert run_up(project, env, "lab").returncode == 0
    assert "BACKEND s3://team-state" in log.read_text()
    assert not (project / ".pulumi-state").exists()


def test_a_relative_key_file_is_read_from_where_the_user_stands(venv_copy, fake_cli, tmp_path):
    project = venv_copy
    env, log = fake_cli
    env["SSH_KEY_FILE"] = "id_test"  # tmp_path/id_test, relative to the cwd below
    result = run_up(project, env, "lab", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "STDIN -----BEGIN OPENSSH PRIVATE KEY-----" in logged(log)


def test_unknown_stack_is_refused_before_anything_runs(project, fake_cli, tmp_path):
    env, log = fake_cli
    with_fake_python(env, tmp_path)
    result = run_up(project, env, "nosuchstack")
    assert result.returncode == 1
    assert "No stack file stacks/Pulumi.nosuchstack.yaml" in result.stderr
    assert logged(log) == []  # neither python3 (the venv) nor pulumi ran


@pytest.mark.parametrize("make, words", [
    (lambda path: None, "no such file"),
    (lambda path: path.mkdir(), "not a file"),
])
def test_a_bad_key_file_is_refused_before_the_venv_the_prompt_or_the_stack(
        project, fake_cli, tmp_path, make, words):
    env, log = fake_cli
    with_fake_python(env, tmp_path)
    env.pop("PULUMI_CONFIG_PASSPHRASE")  # the script would ask for it after the venv
    missing = tmp_path / "no-such-key"
    make(missing)
    env["SSH_KEY_FILE"] = str(missing)
    result = run_up(project, env, "lab")
    assert result.returncode == 1
    assert f"SSH_KEY_FILE={missing}: {words}" in result.stderr
    assert "Passphrase" not in result.stdout + result.stderr
    assert logged(log) == []
    assert not (project / ".pulumi-state").exists()


# Root reads any file: as root, the unreadable-key test runs up.sh as this user instead.
UNPRIVILEGED = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def test_an_unreadable_key_file_is_refused():
    # A directory the unprivileged user can read (pytest's tmp_path is root's alone).
    base = Path(tempfile.mkdtemp(prefix="kserve-up-key-"))
    try:
        base.chmod(0o755)
        project = copy_project(base / "project")
        env, log = make_fake_cli(base)
        log.write_text("")
        log.chmod(0o666)  # the fake pulumi, run as that user, could record a call
        Path(env["SSH_KEY_FILE"]).chmod(0)
        prefix = []
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            assert setpriv, "setpriv (util-linux) is needed to run this test as root"
            prefix = [setpriv, *UNPRIVILEGED]
            env["HOME"] = str(base)
            # The user it runs as can run the project's script and write the log...
            probe = subprocess.run(prefix + ["bash", "-c", f'[ -r "$0" ] && echo probe >>"$1" && id -u',
                                             str(project / "scripts" / "up.sh"), str(log)],
                                   env=env, capture_output=True, text=True, timeout=60)
            assert probe.returncode == 0 and probe.stdout.strip() != "0", probe.stderr
            assert logged(log) == ["probe"]
            log.write_text("")
        # ...but not read the key.
        result = subprocess.run(prefix + ["bash", str(project / "scripts" / "up.sh"), "lab"], env=env,
                                capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        assert result.returncode == 1 and "not readable" in result.stderr, result.stderr
        assert logged(log) == []
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_every_problem_is_reported_together(project, fake_cli, tmp_path):
    env, log = fake_cli
    with_fake_python(env, tmp_path)
    env["PATH"] = f"{tmp_path / 'bin-no-pulumi'}:/usr/bin:/bin"
    env["SSH_KEY_FILE"] = str(tmp_path / "missing")
    result = run_up(project, env, "nosuchstack")
    assert result.returncode == 1
    for words in ("No stack file stacks/Pulumi.nosuchstack.yaml", "SSH_KEY_FILE=", "no such file",
                  "The Pulumi CLI is not installed"):
        assert words in result.stderr, words
    assert logged(log) == []


def test_missing_cli_is_named(project, fake_cli, tmp_path):
    env, log = fake_cli
    env["PATH"] = "/usr/bin:/bin"
    result = run_up(project, env, "lab")
    assert result.returncode == 1 and "The Pulumi CLI is not installed" in result.stderr
    assert not (project / "venv").exists()


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_usage_and_does_nothing(project, fake_cli, tmp_path, flag):
    env, log = fake_cli
    with_fake_python(env, tmp_path)
    result = run_up(project, env, flag)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: scripts/up.sh STACK")
    assert "SSH_KEY_FILE" in result.stdout and result.stderr == ""
    assert logged(log) == []


def test_no_stack_prints_usage_and_exits_2(project, fake_cli, tmp_path):
    env, log = fake_cli
    with_fake_python(env, tmp_path)
    result = run_up(project, env)
    assert result.returncode == 2
    assert result.stderr.startswith("Usage: scripts/up.sh STACK")
    assert logged(log) == []


def test_an_option_in_place_of_the_stack_is_refused(project, fake_cli, tmp_path):
    env, log = fake_cli
    with_fake_python(env, tmp_path)
    result = run_up(project, env, "--yes")
    assert result.returncode == 2
    assert "the first argument is the stack name, not an option: --yes" in result.stderr
    assert logged(log) == []


def test_the_script_in_the_repository_is_the_one_tested():
    assert os.access(ROOT / "scripts" / "up.sh", os.X_OK)
    assert (ROOT / "scripts" / "up.sh").read_text().startswith("#!/usr/bin/env bash\n")
