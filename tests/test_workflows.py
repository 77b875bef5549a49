""".github/workflows: valid YAML, pinned actions, commands the documentation shows,
and the preview's choice of stacks (its shell step is run here against a git repo)."""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
README = (ROOT / "README.md").read_text()
# The documentation: the README (the front door) and the pages under docs/ it links.
DOCS = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
TESTING = (ROOT / "docs" / "testing.md").read_text()
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
CI_RUN = ROOT / ".ci" / "run"
TEST_STEP = 'sudo env "PATH=$PATH" KSERVE_LAB_REQUIRED=1 KSERVE_UPSTREAM_REQUIRED=1 .ci/run'
FETCH_STEP = "scripts/fetch_upstream.py"
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v\d+\.\d+\.\d+\b")


def load(name):
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(workflow):
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_both_workflows_exist_and_parse():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["check.yml", "preview.yml"]
    for name in ("check.yml", "preview.yml"):
        workflow = load(name)
        assert workflow["jobs"] and workflow["on"], name


@pytest.mark.parametrize("name", ["check.yml", "preview.yml"])
def test_every_action_is_pinned_to_a_commit_with_its_version_named(name):
    text = (WORKFLOWS / name).read_text()
    uses_lines = [line for line in text.splitlines() if re.match(r"^\s*(-\s*)?uses:", line)]
    assert uses_lines
    for line in uses_lines:
        reference = line.split("uses:", 1)[1].split("#", 1)[0].strip()
        assert SHA_PIN.match(reference), f"{name}: {reference} is not pinned to a full commit SHA"
        assert VERSION_COMMENT.search(line), f"{name}: say which release {reference} is"
    # One action, one release: two steps must not pin different commits of it.
    pins = {}
    for step in steps(load(name)):
        if "uses" in step:
            action, _, sha = step["uses"].partition("@")
            assert pins.setdefault(action, sha) == sha, action


def test_check_runs_the_readme_test_command_on_push_and_pull_request():
    workflow = load("check.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    runs = [step["run"].strip() for step in steps(workflow) if "run" in step]
    assert runs == [FETCH_STEP, TEST_STEP]
    # .ci/run installs what is missing, then runs the README's test command,
    # and the README shows what CI runs.
    assert CI_RUN.read_text().rstrip().endswith('\nscripts/test.sh "$@"')
    assert "\nscripts/test.sh\n" in README and TEST_STEP in README
    assert os.access(ROOT / "scripts" / "test.sh", os.X_OK) and os.access(CI_RUN, os.X_OK)


def test_check_runs_the_lab_tests_as_root_and_fails_if_they_cannot_run():
    """The SSH-lab tests need root: the test step runs as root, keeps the PATH of the
    Python set up before it, and requires the lab (a lab test that cannot run fails
    instead of being skipped)."""
    words = TEST_STEP.split()
    assert words[0] == "sudo" and words[1] == "env" and '"PATH=$PATH"' in words
    assert "KSERVE_LAB_REQUIRED=1" in words
    from lab.fixtures import REQUIRED_ENV, verdict
    assert REQUIRED_ENV == "KSERVE_LAB_REQUIRED"
    assert verdict("the SSH lab needs root", is_required=False) == "skip"
    assert verdict("the SSH lab needs root", is_required=True) == "fail"
    assert verdict(None, is_required=False) == "run"
    # The lab's sshds listen on port 22 of loopback addresses: .ci/run frees that port
    # from the SSH server installing openssh-server starts on every address.
    text = CI_RUN.read_text()
    assert 'if [ "${KSERVE_LAB_REQUIRED:-}" = 1 ]' in text and "systemctl stop ssh.socket ssh.service" in text


def test_check_fetches_the_upstream_files_and_requires_them():
    """The upstream files are fetched (cached on the pins) before the tests, which then
    fail rather than skip where one is missing; .ci/run requires them beside ../shared/upstream."""
    workflow = load("check.yml")
    all_steps = steps(workflow)
    [cache] = [s for s in all_steps if s.get("uses", "").startswith("actions/cache@")]
    [fetch] = [s for s in all_steps if s.get("run", "").strip() == FETCH_STEP]
    [test] = [s for s in all_steps if s.get("run", "").strip() == TEST_STEP]
    assert all_steps.index(cache) < all_steps.index(fetch) < all_steps.index(test)
    assert cache["with"]["path"] == ".upstream"  # where fetch_upstream.py puts them
    assert "hashFiles('components/versions.py')" in cache["with"]["key"]
    assert fetch["if"] == f"steps.{cache['id']}.outputs.cache-hit != 'true'"
    from components import upstream
    assert f"{upstream.REQUIRED_ENV}=1" in TEST_STEP.split()
    assert upstream.PROJECT_DIR == ROOT / ".upstream"
    text = CI_RUN.read_text()
    assert ('if [ -d ../shared/upstream ]; then\n'
            '  export KSERVE_UPSTREAM_REQUIRED="${KSERVE_UPSTREAM_REQUIRED:-1}"\nfi') in text
    assert text.index("KSERVE_UPSTREAM_REQUIRED=") < text.index('scripts/test.sh "$@"')


def ci_packages() -> set[str]:
    return set(re.findall(r"(?:missing|optional)\+=\(([\w.+-]+)\)", CI_RUN.read_text()))


def test_what_ci_installs_is_listed_in_the_documentation():
    assert ci_packages() == {"shellcheck", "openssh-server", "sudo", "psmisc", "python3-yaml",
                             "python3-cryptography", "iproute2", "python3-venv", "unzip",
                             "python3-pip", "librsvg2-bin", "vagrant", "vagrant-libvirt",
                             "haproxy", "keepalived"}
    for package in ci_packages():
        assert f"`{package}`" in TESTING, f"docs/testing.md does not say that .ci/run installs {package}"


def test_preview_triggers_on_what_changes_a_stack():
    paths = set(load("preview.yml")["on"]["pull_request"]["paths"])
    assert paths == {"stacks/**", "components/**", "scripts/**", "__main__.py", "Pulumi.yaml",
                     "requirements.txt"}
    for path in ("components", "scripts", "stacks", "__main__.py", "Pulumi.yaml", "requirements.txt"):
        assert (ROOT / path).exists(), path


def pulumi_steps(workflow):
    return [s for s in steps(workflow) if s.get("uses", "").startswith("pulumi/actions@")]


def test_preview_uses_the_official_action_with_a_self_managed_backend():
    workflow = load("preview.yml")
    job = workflow["jobs"]["preview"]
    assert "self-hosted" in job["runs-on"] and len(job["runs-on"]) > 1  # plus the lab's own label
    preview = [s for s in pulumi_steps(workflow) if s.get("with", {}).get("command") == "preview"]
    assert len(preview) == 1
    options = preview[0]["with"]
    assert options["diff"] is True and options["comment-on-pr"] is True
    assert options["stack-name"] == "${{ matrix.stack }}"
    assert options["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"
    assert job["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    assert "PULUMI_ACCESS_TOKEN" not in (WORKFLOWS / "preview.yml").read_text()  # no Pulumi Cloud
    assert workflow["permissions"]["pull-requests"] == "write"
    # Fork pull requests never reach the lab runner.
    assert "head.repo.full_name == github.repository" in workflow["jobs"]["stacks"]["if"]


def test_the_cli_release_matches_the_sdk_pin():
    requirements = (ROOT / "requirements.txt").read_text()
    sdk = re.search(r"^pulumi==([\d.]+)$", requirements, re.M).group(1)
    for step in pulumi_steps(load("preview.yml")):
        assert str(step["with"]["pulumi-version"]) == sdk


def test_every_secret_used_is_documented():
    text = (WORKFLOWS / "preview.yml").read_text()
    secrets = set(re.findall(r"secrets\.([A-Z_]+)", text)) - {"GITHUB_TOKEN"}
    assert secrets == {"PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "LAB_SSH_PRIVATE_KEY"}
    runbook = OPERATIONS.split("<!-- runbook:start -->", 1)[1].split("<!-- runbook:end -->", 1)[0]
    for secret in secrets:
        assert f"gh secret set {secret}" in runbook, secret
    assert "kserve-lab" in runbook and "self-hosted" in runbook


def test_every_command_the_workflows_run_is_documented():
    """Each line of a run step (apart from the stack picker, run below) is a command
    the documentation shows, so what CI does can be done by hand."""
    for name in ("check.yml", "preview.yml"):
        for step in steps(load(name)):
            if "run" not in step or step.get("id") == "pick":
                continue
            for line in step["run"].strip().splitlines():
                assert line.strip() in DOCS, f"{name}: the docs do not show `{line.strip()}`"
    assert "pulumi preview --diff" in OPERATIONS


# --- the stack picker -----------------------------------------------------------

def picker_script():
    return next(s["run"] for s in steps(load("preview.yml")) if s.get("id") == "pick")


def git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"})
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    for path in ("stacks/Pulumi.lab.yaml", "stacks/Pulumi.dev.yaml", "components/x.py",
                 "README.md", "__main__.py"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("v1\n")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    base = git(tmp_path, "commit", "-q", "-m", "base")
    return tmp_path, base


def pick(repo_path, base, edits=(), deletes=()):
    for path in edits:
        (repo_path / path).parent.mkdir(parents=True, exist_ok=True)
        (repo_path / path).write_text("v2\n")
    for path in deletes:
        (repo_path / path).unlink()
    git(repo_path, "add", "-A")
    head = git(repo_path, "commit", "-q", "-m", "change")
    output = repo_path.parent / "github_output"
    output.write_text("")
    subprocess.run(["bash", "-c", picker_script()], cwd=repo_path, check=True, capture_output=True,
                   env={**os.environ, "BASE_SHA": base, "HEAD_SHA": head,
                        "GITHUB_OUTPUT": str(output)})
    line = output.read_text().strip()
    assert line.startswith("stacks=")
    return json.loads(line.removeprefix("stacks="))


def test_a_stack_file_change_previews_that_stack_only(repo):
    assert pick(*repo, edits=["stacks/Pulumi.dev.yaml", "README.md"]) == ["dev"]


def test_a_code_change_previews_every_stack(repo):
    assert pick(*repo, edits=["components/x.py"]) == ["dev", "lab"]


def test_a_main_change_previews_every_stack(repo):
    assert pick(*repo, edits=["__main__.py"]) == ["dev", "lab"]


def test_a_new_stack_is_previewed_and_a_deleted_one_is_not(repo):
    assert pick(*repo, edits=["stacks/Pulumi.staging.yaml"],
                deletes=["stacks/Pulumi.dev.yaml"]) == ["staging"]


def test_only_a_deleted_stack_gives_an_empty_list(repo):
    assert pick(*repo, deletes=["stacks/Pulumi.dev.yaml"]) == []
