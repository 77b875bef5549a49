"""scripts/plan.py: what a team gets (endpoints, tokens, scaling, Grafana, the
stack outputs), the files it uploads, a monitoring stack without its password,
and no secret in plain text."""
import copy
import json

import pytest
import yaml

from access_fixtures import EXPIRES, MODELS, access_config, resolve
from components.offline.program import FAKE_KUBECONFIG, evaluate, fake_user_kubeconfig, session_rsa_key
from components.plan.build import GRAFANA_PLACEHOLDER_NOTE, PLACEHOLDER_PRIVATE_KEY, plan_config, plan_stack
from components.plan.text import render_text, to_json
from components.problems import ConfigError
from components.stack_file import parse_stack_file, stack_file_config
from test_plan import run_plan

PASSWORD = {"secure": "v1:Z3JhZmFuYS1zZWNyZXQtaW4tdGhlLWZpbGU="}
FLOWER_SCALING = {"minReplicas": 0, "maxReplicas": 5, "metric": "concurrency", "target": 4,
                  "containerConcurrency": 8}
CPU_SCALING = {"minReplicas": 1, "maxReplicas": 3, "metric": "cpu", "target": 60}
IRIS = {"name": "iris", "namespace": "kserve-test", "format": "sklearn",
        "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model"}


def team_config():
    """The access fixture's projects and models (Serverless), two of them scaled,
    with monitoring on a non-default Grafana port."""
    models = copy.deepcopy(MODELS)
    models[0]["scaling"] = FLOWER_SCALING   # team-a/tf-flower
    models[2]["scaling"] = CPU_SCALING      # team-b/iris
    return access_config(models=models, monitoring={"enabled": True, "grafanaNodePort": 30444},
                         grafanaAdminPassword=PASSWORD)


def evaluate_team(**options):
    """The program for team_config as `pulumi up` gets it: the password a secret."""
    config = team_config()
    secret = {"grafanaAdminPassword": config.pop("grafanaAdminPassword")}
    return evaluate(config, stack="lab", secret_config=secret, **options)


@pytest.fixture(scope="module")
def team():
    plan = plan_config("lab", team_config())
    return plan, render_text(plan), to_json(plan)


@pytest.fixture(scope="module")
def raw():
    config = stack_file_config("lab")
    config["serving"] = {"deploymentMode": "RawDeployment"}
    config["monitoring"] = {"enabled": True}
    config["grafanaAdminPassword"] = PASSWORD
    config["models"] = [
        dict(IRIS, name="iris-rps", scaling={"minReplicas": 2, "maxReplicas": 6, "metric": "rps",
                                             "target": 25}),
        dict(IRIS, name="iris-cpu", scaling=CPU_SCALING),
        IRIS]
    plan = plan_config("lab", config)
    return {e["model"]: e for e in plan.endpoints}


def endpoint(plan, key):
    [found] = [e for e in plan.endpoints if e["model"] == key]
    return found


def section(text, title):
    return text.split(f"\n{title}")[1].split("\n\n")[0]


# --- endpoints and tokens ------------------------------------------------------

def test_each_model_shows_its_url_host_and_served_name(team):
    plan, text, data = team
    flower = endpoint(plan, "team-a/tf-flower")
    assert flower["url"] == "http://10.0.2.21:31903/v1/models/tf-flower:predict"
    assert flower["host"] == "tf-flower.team-a.example.com"
    assert flower["servedName"] == "tf-flower"
    assert {e["model"] for e in plan.endpoints} == {f"{m['namespace']}/{m['name']}" for m in MODELS}
    clients = section(text, "What clients get")
    assert "  team-a/tf-flower\n    url:       http://10.0.2.21:31903/v1/models/tf-flower:predict" \
        in clients
    assert "host:      tf-flower.team-a.example.com (the Host header)" in clients
    assert data["endpoints"] == plan.endpoints


def test_a_torchserve_model_is_addressed_by_its_served_name():
    plan = plan_stack("torchserve-example")
    [model] = plan.endpoints
    assert (model["model"], model["servedName"]) == ("kserve-test/torchserve", "adder")
    assert model["url"].endswith("/v1/models/adder:predict")
    assert "served as: adder" in render_text(plan)


def test_each_model_says_whether_it_needs_a_token_and_which_ones_open_it(team):
    plan, text, _ = team
    assert endpoint(plan, "team-a/tf-flower")["tokens"] == [
        {"name": "team-a/ci", "expires": EXPIRES["team-a/ci"]},
        {"name": "team-a/web", "expires": EXPIRES["team-a/web"]}]
    iris = endpoint(plan, "team-b/iris")
    assert iris["needsToken"] and iris["tokens"] == [{"name": "team-b/batch",
                                                      "expires": EXPIRES["team-b/batch"]}]
    public = endpoint(plan, "team-a/showcase")
    assert (public["project"], public["needsToken"], public["tokens"]) == ("team-a", False, [])
    outside = endpoint(plan, "kserve-test/open-flower")
    assert (outside["project"], outside["needsToken"]) == (None, False)
    locked = endpoint(plan, "team-c/locked")
    assert locked["needsToken"] and locked["tokens"] == []
    clients = section(text, "What clients get")
    assert (f"token:     needed, one of project team-a's: team-a/ci (expires {EXPIRES['team-a/ci']}), "
            f"team-a/web (expires {EXPIRES['team-a/web']})") in clients
    assert "token:     needed, but project team-c has no token: nobody can call it" in clients
    assert "token:     none needed (public in project team-a)" in clients


# --- scaling ------------------------------------------------------------------------

def test_serverless_scaling_as_the_inference_service_gets_it(team):
    plan, text, _ = team
    assert endpoint(plan, "team-a/tf-flower")["scaling"] == {
        "autoscaler": "knative-kpa", "metric": "concurrency", "target": 4, "minReplicas": 0,
        "maxReplicas": 5, "containerConcurrency": 8, "scales": True}
    cpu = endpoint(plan, "team-b/iris")["scaling"]
    assert (cpu["autoscaler"], cpu["metric"], cpu["target"], cpu["minReplicas"],
            cpu["maxReplicas"]) == ("knative-hpa", "cpu", 60, 1, 3)
    default = endpoint(plan, "team-a/showcase")["scaling"]
    assert (default["autoscaler"], default["minReplicas"], default["maxReplicas"],
            default["scales"]) == ("knative-kpa", 1, None, True)
    clients = section(text, "What clients get")
    assert ("scaling:   Knative's autoscaler (KPA) on concurrency, target 4 requests in flight "
            "per replica; 0 to 5 replicas; at most 8 requests in flight per replica") in clients
    assert "scaling:   Knative's HPA class on cpu, target 60% of the cpu request; 1 to 3 replicas" \
        in clients


def test_raw_deployment_scaling_and_the_requests_per_second_hpa(raw):
    rps = raw["kserve-test/iris-rps"]["scaling"]
    assert (rps["autoscaler"], rps["metric"], rps["target"], rps["minReplicas"],
            rps["maxReplicas"]) == ("adapter-hpa", "rps", 25, 2, 6)
    cpu = raw["kserve-test/iris-cpu"]["scaling"]
    assert (cpu["autoscaler"], cpu["metric"], cpu["target"]) == ("kserve-hpa", "cpu", 60)
    # Without scaling, KServe's raw HPA gets max = min: one replica that never scales.
    default = raw["kserve-test/iris"]["scaling"]
    assert (default["autoscaler"], default["minReplicas"], default["maxReplicas"],
            default["scales"]) == ("kserve-hpa", 1, 1, False)
    assert raw["kserve-test/iris"]["host"] == "iris.kserve-test.example.com"  # both modes


# --- Grafana and the stack outputs ---------------------------------------------------

def test_grafana_url_on_its_node_port(team):
    plan, text, data = team
    assert plan.grafana_url == data["grafanaUrl"] == "http://10.0.2.21:30444"
    assert "\nGrafana: http://10.0.2.21:30444\n" in text


def test_no_grafana_without_monitoring():
    plan = plan_config("lab", stack_file_config("lab"))
    assert plan.grafana_url is None and "Grafana:" not in render_text(plan)
    assert "grafanaUrl" not in {o["name"] for o in plan.outputs}


def test_every_exported_output_and_which_are_secret(team):
    plan, text, data = team
    evaluation = evaluate_team()
    assert [o["name"] for o in plan.outputs] == list(evaluation.outputs)
    by_name = {o["name"]: o for o in data["outputs"]}
    for whole in ("kubeconfig", "grafanaAdminPassword"):
        assert by_name[whole] == {"name": whole, "secret": True, "secretParts": []}
    assert by_name["tokens"]["secretParts"] == ["team-a/ci", "team-a/web", "team-b/batch"]
    assert by_name["memberKubeconfigs"]["secretParts"] == ["alice", "bob", "carol", "dave"]
    for plain in ("models", "curl", "grafanaUrl", "members", "ingressAddress"):
        assert by_name[plain]["secret"] is False, plain
    outputs = section(text, "Stack outputs")
    assert "\n  kubeconfig (secret)\n" in outputs
    assert "\n  tokens (secret values: team-a/ci, team-a/web, team-b/batch)" in outputs
    assert "\n  models\n" in outputs


def test_no_secret_value_in_the_text_or_the_json(team):
    plan, text, data = team
    printed = text + json.dumps(data, default=str)
    # The same evaluation as the plan's: tokens are signed with this process's key.
    evaluation = evaluate_team(secret_private_key=PLACEHOLDER_PRIVATE_KEY)
    tokens = resolve(evaluation.outputs["tokens"])
    kubeconfigs = resolve(evaluation.outputs["memberKubeconfigs"])
    secrets = [*tokens.values(), *kubeconfigs.values(), FAKE_KUBECONFIG,
               fake_user_kubeconfig("alice"), resolve(evaluation.outputs["grafanaAdminPassword"]),
               PASSWORD["secure"], PLACEHOLDER_PRIVATE_KEY.splitlines()[1],
               session_rsa_key()[0].splitlines()[-3]]
    assert len(tokens) == 3 and all(secrets)
    for secret in secrets:
        assert secret not in printed
    # ... while the plan does speak of them, by name.
    assert "tokens (secret values: team-a/ci" in text
    assert f"team-a/ci (expires {EXPIRES['team-a/ci']})" in text


# --- uploads ------------------------------------------------------------------------

def test_uploads_and_data_lists_the_files_it_counts():
    plan = plan_stack("torchserve-example")
    text = render_text(plan)
    uploads = section(text, "Uploads and data")
    copies = [s for s in plan.steps.values() if s.kind == "upload"]
    assert f"({len(copies)} file(s), {sum(c.details['bytes'] for c in copies)} bytes" in uploads
    listed = [line for line in uploads.splitlines() if line.startswith("    file ")]
    assert len(listed) == len(copies) == 2
    for copy_step in copies:
        assert f"    file {copy_step.details['source']} ({copy_step.details['bytes']} bytes)" in listed
    # Each file under the upload that sends it, after it.
    lines = uploads.splitlines()
    upload_at = next(i for i, line in enumerate(lines)
                     if line.startswith("  upload-kserve-test-models/torchserve:"))
    assert all(lines.index(f) == upload_at + 1 + n for n, f in enumerate(listed))
    [entry] = [e for e in to_json(plan)["uploadsAndData"] if e["files"]]
    assert entry["step"] == "upload-kserve-test-models/torchserve"
    assert sorted(f["source"] for f in entry["files"]) == sorted(c.details["source"] for c in copies)


# --- a monitoring stack without its password ----------------------------------------

def monitoring_stack(tmp_path, **extra):
    config = {f"kserve-cluster:{k}": v for k, v in stack_file_config("lab").items()}
    config["kserve-cluster:monitoring"] = {"enabled": True}
    config.update(extra)
    (tmp_path / "Pulumi.mon.yaml").write_text(yaml.safe_dump({"config": config}))
    return tmp_path


def test_plan_runs_for_a_monitoring_stack_without_its_password(tmp_path):
    stacks = monitoring_stack(tmp_path)
    result = run_plan("mon", "--stacks-dir", str(stacks))
    assert result.returncode == 0, result.stderr
    assert GRAFANA_PLACEHOLDER_NOTE in result.stdout
    assert "kube-prometheus-stack-chart" in result.stdout
    assert "\nGrafana: http://10.0.2.21:30300\n" in result.stdout
    data = json.loads(run_plan("mon", "--stacks-dir", str(stacks), "--json").stdout)
    assert GRAFANA_PLACEHOLDER_NOTE in data["notes"]
    # `pulumi up` still refuses it: the program's validation is unchanged.
    with pytest.raises(ConfigError, match="grafanaAdminPassword = \\(not set\\): required"):
        parse_stack_file("mon", stacks)
    with pytest.raises(Exception, match="grafanaAdminPassword"):
        evaluate(stack_file_config("mon", stacks))


def test_no_placeholder_when_the_password_is_set_or_monitoring_is_off(tmp_path):
    plan = plan_stack("mon", monitoring_stack(tmp_path, **{"kserve-cluster:grafanaAdminPassword":
                                                            PASSWORD}))
    assert GRAFANA_PLACEHOLDER_NOTE not in plan.notes
    lab = plan_stack("lab")
    assert GRAFANA_PLACEHOLDER_NOTE not in lab.notes
    assert not [n for n in lab.notes if "grafanaAdminPassword" in n]  # no "set, but not enabled"
