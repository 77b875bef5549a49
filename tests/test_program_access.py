"""Projects, members and tokens under Pulumi's mock runtime: the graph, the secrets,
one owner per namespace, the outputs, and two evaluations that agree."""
import base64
import datetime
import json

import pytest
import yaml

from access_fixtures import EXPIRES, access_config, is_secret, resolve
from components import versions
from components.access import projects as projects_module
from components.offline.graph import Graph
from components.offline.program import evaluate, session_rsa_key
from components.plan.build import SCRIPT_ESTIMATES, describe, script_name
from components.stack_file import stack_file_config

NAMESPACE = "kubernetes:core/v1:Namespace"
COMPONENT_PROJECTS = "kserve-cluster:access:Projects"
COMPONENT_TOKENS = "kserve-cluster:access:IngressTokens"
TLS_KEY = "tls:index/privateKey:PrivateKey"


@pytest.fixture(scope="module")
def stack():
    evaluation = evaluate(access_config())
    return evaluation, Graph(evaluation)


def env_part(command) -> str:
    """The `env A=1 B=2` in front of `bash -c '<script>'`: a command's inputs."""
    return command.inputs["create"].split(" bash -c ", 1)[0]


def under(evaluation, component_type):
    """Every resource inside the component of that type (at any depth)."""
    by_urn = {r.urn: r for r in evaluation.registrations}
    found = []
    for r in evaluation.registrations:
        parent = by_urn.get(r.parent)
        while parent is not None:
            if parent.type == component_type:
                found.append(r)
                break
            parent = by_urn.get(parent.parent)
    return found


# ---------------------------------------------------------------- the graph

def test_namespaces_before_quotas_limit_ranges_roles_and_bindings(stack):
    _, graph = stack
    for project in ("team-a", "team-b"):
        for name in (f"quota-{project}", f"limits-{project}", f"role-{project}"):
            assert graph.waits_for(name, f"namespace-{project}"), name
    for project, member in (("team-a", "alice"), ("team-b", "carol")):
        assert graph.waits_for(f"binding-{project}-{member}", f"namespace-{project}")
        assert graph.waits_for(f"binding-{project}-{member}", f"role-{project}")


def test_nothing_of_projects_or_policies_before_every_node_is_ready(stack):
    evaluation, graph = stack
    on_cluster = [r for r in under(evaluation, COMPONENT_PROJECTS) + under(evaluation, COMPONENT_TOKENS)
                  if r.custom and r.type != TLS_KEY]  # the signing key is not on the cluster
    assert len(on_cluster) >= 20
    for resource in on_cluster:
        assert graph.waits_for(resource.name, "nodes-ready"), resource.name


def test_policies_after_istio_and_protected_models_after_their_policies(stack):
    _, graph = stack
    for policy in ("request-authentication", "authorization-policy-team-a",
                   "authorization-policy-team-b", "authorization-policy-team-c"):
        assert graph.waits_for(policy, "istio-ingressgateway-chart"), policy
        assert graph.waits_for(policy, "istiod-chart"), policy
    assert graph.waits_for("request-authentication", "token-signing-key-1")
    for model, policy in (("isvc-team-a-tf-flower", "authorization-policy-team-a"),
                          ("isvc-team-b-iris", "authorization-policy-team-b"),
                          ("isvc-team-c-locked", "authorization-policy-team-c")):
        assert graph.waits_for(model, policy), model
        assert graph.waits_for(model, "request-authentication"), model


def test_one_owner_per_namespace(stack):
    evaluation, graph = stack
    namespaces = [r for r in evaluation.by_type(NAMESPACE)]
    names = [r.inputs["metadata"]["name"] for r in namespaces]
    assert sorted(names) == ["kserve-test", "team-a", "team-b", "team-c"]  # each exactly once
    by_urn = {r.urn: r for r in evaluation.registrations}
    for r in namespaces:
        owner = by_urn[r.parent].type
        expected = "kserve-cluster:serving:ModelWorkloads" if r.inputs["metadata"]["name"] == "kserve-test" \
            else COMPONENT_PROJECTS
        assert owner == expected, r.inputs["metadata"]["name"]
    # The models and runtimes of a project wait for the project's namespace.
    assert graph.waits_for("isvc-team-a-tf-flower", "namespace-team-a")
    assert graph.waits_for("isvc-team-b-iris", "namespace-team-b")


def engine_urn(evaluation, registration) -> str:
    """The URN the Pulumi engine gives a resource: its ancestors' types, without the
    root Stack's, joined by `$` (the mock monitor keeps only the parent's last type)."""
    by_urn = {r.urn: r for r in evaluation.registrations}
    types, parent = [registration.type], by_urn.get(registration.parent)
    while parent is not None and parent.type != "pulumi:pulumi:Stack":
        types.insert(0, parent.type)
        parent = by_urn.get(parent.parent)
    return f"urn:pulumi:test::kserve-cluster::{'$'.join(types)}::{registration.name}"


def test_a_namespace_that_changes_owner_is_moved_not_recreated(stack):
    evaluation, _ = stack
    component = {r.type: engine_urn(evaluation, r) for r in evaluation.registrations if not r.custom}
    project_ns = evaluation.named("namespace-team-a")
    model_ns = evaluation.named("namespace-kserve-test")
    assert project_ns.aliases == [{"spec": {"parentUrn": component["kserve-cluster:serving:ModelWorkloads"]}}]
    assert model_ns.aliases == [{"spec": {"parentUrn": component[COMPONENT_PROJECTS]}}]
    assert component[COMPONENT_PROJECTS] == "urn:pulumi:test::kserve-cluster::" \
        "kserve-cluster:access:Projects::projects"
    # Same resource name and type on both sides: only the parent differs.
    assert project_ns.name == model_ns.name.replace("kserve-test", "team-a")
    assert project_ns.type == model_ns.type


# ---------------------------------------------------------------- members' kubeconfigs

def test_member_kubeconfigs_are_issued_on_the_control_plane(stack):
    evaluation, graph = stack
    config = access_config()
    control_plane = next(n for n in config["nodes"] if n["role"] == "control-plane")
    expected = {"alice": "kserve-cluster:project:team-a",
                "bob": "kserve-cluster:project:team-a,kserve-cluster:project:team-b",
                "carol": "kserve-cluster:project:team-b", "dave": "kserve-cluster:project:team-c"}
    for member, organizations in expected.items():
        command = evaluation.named(f"member-kubeconfig-{member}")
        assert command.inputs["connection"]["host"] == control_plane["address"]
        create = command.inputs["create"]
        assert create.rstrip().endswith("issue-member-kubeconfig.sh")
        assert f"MEMBER={member}" in create and f"ORGANIZATIONS={organizations}" in create
        assert "VALIDITY=2160h" in create  # 90 days, the default
        cluster_config = yaml.safe_load(command.inputs["stdin"])
        assert cluster_config == {"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
                                  "clusterName": "kubernetes",
                                  "kubernetesVersion": f"v{versions.KUBERNETES_VERSION}",
                                  "controlPlaneEndpoint": f"{control_plane['address']}:6443",
                                  "certificatesDir": "/etc/kubernetes/pki"}
        assert "stdout" in command.additional_secret_outputs
        assert command.inputs["logging"] == "stderr"
        for project in organizations.split(","):
            name = project.rsplit(":", 1)[1]
            assert graph.waits_for(command.name, f"binding-{name}-{member}")
        assert graph.waits_for(command.name, "cp1-kubeadm-init")


def test_member_kubeconfig_triggers_renew_only_in_a_new_period(monkeypatch):
    # 90-day certificates renewed 30 days before their end: 60-day periods counted
    # from 1970-01-01; period 341 starts on day 341 * 60.
    start = datetime.date(1970, 1, 1) + datetime.timedelta(days=341 * 60)
    days = {"last day of 340": start - datetime.timedelta(days=1), "first of 341": start,
            "last of 341": start + datetime.timedelta(days=59),
            "first of 342": start + datetime.timedelta(days=60)}
    runs = {}
    for label, day in days.items():
        monkeypatch.setattr(projects_module, "utc_today", lambda d=day: d)
        evaluation = evaluate(access_config())
        runs[label] = {r.name: json.dumps(r.inputs, sort_keys=True) for r in evaluation.registrations}
    members = {"member-kubeconfig-alice", "member-kubeconfig-bob", "member-kubeconfig-carol",
               "member-kubeconfig-dave"}

    def changed(a, b):
        return {name for name in runs[a] if runs[a][name] != runs[b][name]}
    assert changed("first of 341", "last of 341") == set()  # the same period: no diff
    assert changed("last day of 340", "first of 341") == members
    assert changed("last of 341", "first of 342") == members
    assert '"renewal period 341"' in runs["first of 341"]["member-kubeconfig-alice"]


def test_changing_a_members_projects_reissues_only_their_kubeconfig(stack):
    evaluation, _ = stack
    config = access_config()
    config["projects"][1]["members"] = ["carol"]  # bob leaves team-b
    after = evaluate(config)
    before = {r.name: json.dumps(r.inputs, sort_keys=True) for r in evaluation.registrations}
    now = {r.name: json.dumps(r.inputs, sort_keys=True) for r in after.registrations}
    assert set(before) - set(now) == {"binding-team-b-bob"}  # removing a member removes their binding
    changed = {name for name in now if name in before and now[name] != before[name]}
    assert changed == {"member-kubeconfig-bob"}


def test_removing_a_member_removes_their_bindings_and_kubeconfig(stack):
    evaluation, _ = stack
    config = access_config()
    for project in config["projects"]:
        project["members"] = [m for m in project["members"] if m != "bob"]
    after = {r.name for r in evaluate(config).registrations}
    gone = {r.name for r in evaluation.registrations} - after
    assert gone == {"binding-team-a-bob", "binding-team-b-bob", "member-kubeconfig-bob"}


# ---------------------------------------------------------------- secrets

def test_kubeconfigs_tokens_and_the_signing_key_are_secrets_everywhere(stack):
    evaluation, _ = stack
    outputs = evaluation.outputs
    tokens = resolve(outputs["tokens"])
    kubeconfigs = outputs["memberKubeconfigs"]
    assert set(kubeconfigs) == {"alice", "bob", "carol", "dave"}
    for value in list(kubeconfigs.values()) + list(outputs["tokens"].values()):
        assert is_secret(value)
    assert "client-key-data" in resolve(kubeconfigs["alice"])
    private_pem, _ = session_rsa_key()
    # A PEM line from the private exponent: the key's first lines hold the modulus,
    # which the JWKS publishes (in base64url, so an early line may match it).
    key_body = private_pem.splitlines()[8]
    for registration in evaluation.registrations:
        for token in tokens.values():
            assert token not in registration.plain, registration.name
            assert token.split(".")[2] not in registration.plain, registration.name
        assert key_body not in registration.plain, registration.name
    # The token the smoke prediction sends is a secret input: the stack's CA first
    # (base64 on one line, the request goes over https), then the token, then the body.
    smoke = evaluation.named("smoke-predict-team-a-tf-flower")
    assert "stdin" in smoke.secret_paths
    assert "TOKEN_ON_STDIN=1" in env_part(smoke) and "CA_ON_STDIN=1" in env_part(smoke)
    ca_line, token_line, _ = smoke.inputs["stdin"].split("\n", 2)
    assert base64.b64decode(ca_line, validate=True).startswith(b"-----BEGIN CERTIFICATE-----")
    assert token_line == tokens["team-a/ci"]
    assert tokens["team-a/ci"] not in smoke.inputs["create"]
    assert "URL=https://" in env_part(smoke)


def test_the_jwks_is_public_and_in_plain_sight(stack):
    evaluation, _ = stack
    ra = evaluation.named("request-authentication")
    jwks = json.loads(ra.inputs["spec"]["jwtRules"][0]["jwks"])
    assert jwks["keys"][0]["n"] in ra.plain
    assert set(jwks["keys"][0]) == {"kty", "n", "e", "alg", "use", "kid"}


def test_two_evaluations_give_identical_inputs(stack):
    evaluation, _ = stack
    again = evaluate(access_config())
    first = sorted((r.type, r.name, json.dumps(r.inputs, sort_keys=True)) for r in evaluation.registrations)
    second = sorted((r.type, r.name, json.dumps(r.inputs, sort_keys=True)) for r in again.registrations)
    assert first == second  # secrets included: the tokens and the smoke stdin too
    assert resolve(again.outputs["tokens"]) == resolve(evaluation.outputs["tokens"])


def test_preview_of_a_fresh_stack_works_with_unknown_key_and_tokens():
    evaluation = evaluate(access_config(), preview=True)
    ra = evaluation.named("request-authentication")
    assert "spec" in ra.unknown_paths or ra.inputs.get("spec") is None
    assert evaluation.named("authorization-policy-team-a").inputs["spec"]["action"] == "DENY"


# ---------------------------------------------------------------- outputs and the smoke test

def test_model_outputs_say_who_needs_a_token_and_curl_names_it(stack):
    evaluation, _ = stack
    models = evaluation.outputs["models"]
    protected = models["team-a/tf-flower"]
    assert protected["project"] == "team-a" and protected["needsToken"] is True
    assert '-H "Authorization: Bearer $TOKEN"' in protected["curl"]
    public = models["team-a/showcase"]
    assert public["needsToken"] is False and "Authorization" not in public["curl"]
    outside = models["kserve-test/open-flower"]
    assert "project" not in outside and "Authorization" not in outside["curl"]
    assert evaluation.outputs["curl"] == protected["curl"]
    members = evaluation.outputs["members"]
    assert members["bob"]["projects"] == ["team-a", "team-b"]
    assert datetime.date.fromisoformat(members["bob"]["renewsFrom"]) > datetime.date(2026, 1, 1)


def test_the_smoke_prediction_skips_a_model_nobody_can_call():
    models = access_config()["models"]
    locked = next(m for m in models if m["name"] == "locked")
    evaluation = evaluate(access_config(models=[locked] + [m for m in models if m is not locked]))
    smokes = [c.name for c in evaluation.commands() if c.name.startswith("smoke-predict-")]
    assert smokes == ["smoke-predict-team-a-tf-flower"]


def test_a_public_first_model_is_smoke_tested_without_a_token():
    models = access_config()["models"]
    public = next(m for m in models if m.get("public"))
    evaluation = evaluate(access_config(models=[public]))
    smoke = evaluation.named("smoke-predict-team-a-showcase")
    assert "TOKEN_ON_STDIN" not in env_part(smoke) and "stdin" not in smoke.secret_paths


# ---------------------------------------------------------------- without projects, and bad input

def test_without_projects_nothing_of_this_exists():
    evaluation = evaluate(stack_file_config("lab"))
    types = {r.type for r in evaluation.registrations}
    assert COMPONENT_PROJECTS not in types and COMPONENT_TOKENS not in types and TLS_KEY not in types
    assert not [r for r in evaluation.registrations if r.type.startswith("kubernetes:security.istio.io")]
    assert {"members", "memberKubeconfigs", "tokens"}.isdisjoint(evaluation.outputs)


def test_projects_without_tokens_need_no_signing_key():
    config = access_config()
    for project in config["projects"]:
        project.pop("tokens", None)
    evaluation = evaluate(config)
    types = {r.type for r in evaluation.registrations}
    assert TLS_KEY not in types and "tokens" not in evaluation.outputs
    names = {r.name for r in evaluation.registrations}
    assert "request-authentication" not in names and "authorization-policy-team-a" in names


def test_raising_the_key_generation_replaces_the_key_and_every_token(stack):
    evaluation, _ = stack
    evaluation2 = evaluate(access_config(access={"signingKeyGeneration": 2}))
    assert "token-signing-key-2" in {r.name for r in evaluation2.registrations}
    assert "token-signing-key-1" not in {r.name for r in evaluation2.registrations}


def test_bad_access_config_stops_before_any_resource():
    config = access_config()
    config["projects"][0]["tokens"][0]["expires"] = "2099-12-31"  # beyond access.maxTokenDays
    with pytest.raises(Exception) as caught:
        evaluate(config)
    assert "projects[0] (team-a).tokens[0] (ci).expires = '2099-12-31'" in str(caught.value)
    assert "more than access.maxTokenDays (365)" in str(caught.value)
    assert not [r for r in caught.value.registrations if r.custom]


def test_an_unquoted_yaml_date_is_read_as_the_cli_passes_it():
    config = access_config()
    config["projects"][0]["tokens"][0]["expires"] = datetime.date.fromisoformat(EXPIRES["team-a/ci"])
    tokens = resolve(evaluate(config).outputs["tokens"])
    assert tokens == resolve(evaluate(access_config()).outputs["tokens"])


def test_the_offline_plan_describes_the_new_resources(stack):
    evaluation, _ = stack
    nodes = {"10.0.2.21": "cp1"}
    assert describe(evaluation.named("token-signing-key-1"), nodes).summary == \
        "RSA private key (2048 bits), kept encrypted in the state"
    assert describe(evaluation.named("member-kubeconfig-bob"), nodes).summary == \
        "runs issue-member-kubeconfig.sh on cp1 (10.0.2.21)"
    assert describe(evaluation.named("authorization-policy-team-a"), nodes).summary == \
        "AuthorizationPolicy istio-system/kserve-project-team-a (security.istio.io/v1)"
    scripts = {script_name(c.inputs["create"]) for c in evaluation.commands()}
    assert scripts <= set(SCRIPT_ESTIMATES), scripts - set(SCRIPT_ESTIMATES)


# ---------------------------------------------------------------- admission policies

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
POLICY_BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"


def test_admission_policies_bind_before_any_member_gets_a_kubeconfig(stack):
    evaluation, graph = stack
    policies = evaluation.by_type(POLICY)
    bindings = evaluation.by_type(POLICY_BINDING)
    names = {p.inputs["metadata"]["name"] for p in policies}
    assert names == {"kserve-cluster-member-inferenceservices",
                     "kserve-cluster-member-servingruntimes"}
    assert {b.inputs["spec"]["policyName"] for b in bindings} == names
    for policy in policies:
        assert graph.waits_for(policy.name, "nodes-ready")
        binding = next(b for b in bindings if b.inputs["spec"]["policyName"]
                       == policy.inputs["metadata"]["name"])
        assert graph.waits_for(binding.name, policy.name)
        for member in ("alice", "bob", "carol", "dave"):
            assert graph.waits_for(f"member-kubeconfig-{member}", binding.name)
    # No storage secrets in this stack: a member's model runs as `default` only.
    [isvc] = [p for p in policies if p.inputs["metadata"]["name"].endswith("inferenceservices")]
    [accounts] = isvc.inputs["spec"]["variables"]
    assert accounts["expression"].startswith("request.namespace in {}")


def test_admission_policies_allow_the_projects_storage_accounts():
    keys = {"accessKeyId": "AKIA0000", "secretAccessKey": "not-a-real-key"}
    secrets = [{"name": "minio", "namespace": "team-a", "endpoint": "minio.minio.svc:9000",
                "useHttps": False, **keys}]
    evaluation = evaluate(access_config(), secret_config={"storageSecrets": secrets})
    [isvc] = [p for p in evaluation.by_type(POLICY)
              if p.inputs["metadata"]["name"].endswith("inferenceservices")]
    [accounts] = isvc.inputs["spec"]["variables"]
    assert "{'team-a': ['default', 'minio']}" in accounts["expression"]


def test_without_projects_there_is_no_admission_policy():
    evaluation = evaluate(stack_file_config("lab"))
    assert not evaluation.by_type(POLICY) and not evaluation.by_type(POLICY_BINDING)
