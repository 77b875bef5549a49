"""`projects` and `access` in the stack config: parsing, and a test per validation rule.

Every problem names the key, the value and the fix, and all of them are
reported together before any resource exists.
"""
import datetime

import pytest

from components.access import config as access_config
from components.access.config import AccessSettings, Quota, Token, parse_access_config
from components.quantity import parse_quantity
from components.problems import ConfigError, Problems
from components.serving.config import parse_serving_config
from components.stack_config import parse_stack_config

TODAY = datetime.date(2026, 6, 1)
NODES = [{"name": "cp1", "address": "10.0.2.21", "role": "control-plane"}]
FLOWERS = "gs://kfserving-examples/models/tensorflow/flowers"


def model(name="tf-flower", namespace="team-a", **extra):
    return {"name": name, "namespace": namespace, "format": "tensorflow", "storageUri": FLOWERS,
            **extra}


def project(name="team-a", **extra):
    return {"name": name, **extra}


def check(projects, models=None, access=None):
    """(config, problems, warnings) for these keys, today being TODAY."""
    problems = Problems()
    serving = parse_serving_config(problems, None, None, models)
    config = parse_access_config(problems, projects, access, serving, today=TODAY)
    return config, problems.items, problems.warnings


def only_problem(projects, models=None, access=None) -> str:
    _, items, _ = check(projects, models, access)
    assert len(items) == 1, items
    return items[0]


# ---------------------------------------------------------------- what a good config gives

def test_a_full_project_parses():
    config, items, warnings = check(
        [project(quota={"cpu": "8", "memory": "32Gi", "gpu": 1, "pods": "20", "storage": "100Gi",
                        "ephemeralStorage": "50Gi", "claims": 12},
                 members=["alice", "bob.smith"],
                 tokens=[{"name": "ci", "expires": "2026-12-31"},
                         {"name": "web", "expires": datetime.date(2027, 1, 15)}])],
        [model()])
    assert items == [] and warnings == []
    [team] = config.projects
    assert team.quota == Quota(cpu="8", memory="32Gi", gpu=1, pods=20, storage="100Gi",
                               ephemeral_storage="50Gi", claims=12)
    assert team.members == ("alice", "bob.smith")
    assert team.tokens == (Token("ci", datetime.date(2026, 12, 31)),
                           Token("web", datetime.date(2027, 1, 15)))
    assert config.settings == AccessSettings(90, 30, 1, 365)


def test_no_projects_is_the_default():
    config, items, warnings = check(None, None)
    assert config.projects == () and items == [] and warnings == []


def test_members_across_projects_and_who_is_protected():
    models = [model(), model("open", public=True), model("other", namespace="kserve-test"),
              model("b", namespace="team-b")]
    config, _, _ = check([project("team-a", members=["bob", "alice"],
                                  tokens=[{"name": "ci", "expires": "2027-01-01"}]),
                          project("team-b", members=["bob"])], models)
    assert config.members == {"alice": ("team-a",), "bob": ("team-a", "team-b")}
    by_name = {m.name: m for m in parse_serving_config(Problems(), None, None, models).models}
    assert config.protects(by_name["tf-flower"]) and config.protects(by_name["b"])
    assert not config.protects(by_name["open"]) and not config.protects(by_name["other"])
    assert config.caller_token(by_name["tf-flower"])[1].name == "ci"
    assert config.caller_token(by_name["open"]) is None
    assert not config.can_be_called(by_name["b"])  # team-b has no token
    assert config.can_be_called(by_name["other"])


def test_quantities_are_read_exactly():
    assert parse_quantity("500m") == parse_quantity("0.5")
    assert parse_quantity("1Gi") == 1024 ** 3
    assert parse_quantity("1G") == 10 ** 9
    assert parse_quantity(4) == 4
    assert parse_quantity("1e3") == 1000
    for bad in ("lots", "8 GB", "-1Gi", "", "1.5.2", True, None, "1gi"):
        assert parse_quantity(bad) is None, bad


# ---------------------------------------------------------------- one test per rule

@pytest.mark.parametrize("name", ["Team_A", "team a", "-team", "a" * 64, 7])
def test_a_project_name_that_is_not_a_dns_label(name):
    problem = only_problem([project(name)])
    assert problem.startswith(f"kserve-cluster:projects[0]")
    assert f".name = {name!r}: not a valid project name" in problem
    assert "Fix: rename it, e.g. 'team-a'." in problem


@pytest.mark.parametrize("name", ["CI", "ci_token", "web.app"])
def test_a_token_name_that_is_not_a_dns_label(name):
    problem = only_problem([project(tokens=[{"name": name, "expires": "2027-01-01"}])])
    assert f"projects[0] (team-a).tokens[0] ({name}).name = {name!r}: not a valid token name" in problem


@pytest.mark.parametrize("key,value", [("cpu", "lots"), ("memory", "8 GB"), ("storage", "-1Gi"),
                                       ("cpu", True), ("memory", [1]),
                                       ("ephemeralStorage", "lots")])
def test_a_quota_that_is_not_a_quantity(key, value):
    problem = only_problem([project(quota={key: value})])
    assert f"projects[0] (team-a).quota.{key} = {value!r}: not a Kubernetes quantity." in problem
    assert "Fix: write a non-negative quantity" in problem


@pytest.mark.parametrize("value", ["10Gi", "512Mi", "2G"])
def test_a_cpu_quota_written_in_bytes(value):
    problem = only_problem([project(quota={"cpu": value})])
    assert f"projects[0] (team-a).quota.cpu = {value!r}: a byte amount, not CPU cores." in problem
    assert "Fix: write cores, e.g. '8' or 8000m" in problem


@pytest.mark.parametrize("value", ["8", 8, "8000m", "1.5", "1k"])
def test_cpu_quotas_in_cores(value):
    assert check([project(quota={"cpu": value})])[1] == []


@pytest.mark.parametrize("key,value,what", [("gpu", "two", "not a whole number"),
                                            ("gpu", 1.5, "not a whole number"),
                                            ("pods", -1, "outside the range"),
                                            ("pods", "ten", "not a whole number"),
                                            ("claims", 2.5, "not a whole number"),
                                            ("claims", -3, "outside the range")])
def test_gpu_and_pods_quotas_are_whole_numbers(key, value, what):
    problem = only_problem([project(quota={key: value})])
    assert f"projects[0] (team-a).quota.{key} = {value!r}: {what}" in problem


@pytest.mark.parametrize("expires", ["2026-05-31", "2026-06-01", "2020-01-01",
                                     datetime.date(2026, 5, 1)])
def test_a_token_whose_day_has_passed_is_dropped_with_a_warning(expires):
    config, items, warnings = check([project(tokens=[{"name": "ci", "expires": expires},
                                                     {"name": "web", "expires": "2026-09-01"}])],
                                    [model()])
    assert items == []  # it does not stop `pulumi up`
    assert [t.name for t in config.projects[0].tokens] == ["web"]  # ci is not issued
    [warning] = warnings
    assert "tokens[0] (ci).expires" in warning
    assert "the token's day has passed (today is 2026-06-01 UTC" in warning
    assert "it is dropped, not issued, and the gateway no longer accepts it." in warning
    assert "Fix: remove it from the stack file, or give a later day, e.g. '2026-08-30'" in warning


@pytest.mark.parametrize("expires,days", [("2027-06-02", 366), ("2099-12-31", 26876)])
def test_a_token_longer_than_max_token_days_is_refused(expires, days):
    problem = only_problem([project(tokens=[{"name": "ci", "expires": expires}])])
    assert (f"projects[0] (team-a).tokens[0] (ci).expires = '{expires}': {days} days from today "
            f"(2026-06-01 UTC), more than access.maxTokenDays (365)") in problem
    assert "Fix: give a day up to '2027-06-01', or raise access.maxTokenDays (at most 3650)." \
        in problem


def test_max_token_days_is_the_limit_and_can_be_changed():
    assert check([project(tokens=[{"name": "ci", "expires": "2027-06-01"}])])[1] == []  # 365 days
    config, items, _ = check([project(tokens=[{"name": "ci", "expires": "2027-06-02"}])],
                             access={"maxTokenDays": 730})
    assert items == [] and config.settings.max_token_days == 730
    problem = only_problem([project(tokens=[{"name": "ci", "expires": "2026-07-02"}])],
                           access={"maxTokenDays": 30})
    assert "31 days from today (2026-06-01 UTC), more than access.maxTokenDays (30)" in problem


@pytest.mark.parametrize("expires", ["31/12/2026", "2026-13-01", "2026-02-30", 20261231,
                                     "next year", datetime.datetime(2027, 1, 1, 12, 0)])
def test_a_token_whose_expiry_is_malformed(expires):
    problem = only_problem([project(tokens=[{"name": "ci", "expires": expires}])])
    assert "tokens[0] (ci).expires" in problem and "not a date written YYYY-MM-DD." in problem


def test_a_token_without_expiry():
    problem = only_problem([project(tokens=[{"name": "ci"}])])
    assert "tokens[0] (ci).expires = (not set): required." in problem


def test_today_is_utc_by_default(monkeypatch):
    monkeypatch.setattr(access_config, "utc_today", lambda: datetime.date(2030, 1, 1))
    problems = Problems()
    serving = parse_serving_config(problems, None, None, None)
    parse_access_config(problems, [project(tokens=[{"name": "ci", "expires": "2029-12-31"}])],
                        None, serving)
    assert "today is 2030-01-01 UTC" in problems.warnings[0]


@pytest.mark.parametrize("member", ["Alice", "alice@example.com", "-bob", "system:admin",
                                    "bob smith", "", 42, "kubernetes-admin", "kube-proxy"])
def test_a_member_name_that_is_not_a_valid_user_name(member):
    problem = only_problem([project(members=[member])])
    assert f"projects[0] (team-a).members[0] = {member!r}:" in problem
    assert "Fix: use the person's" in problem


def test_a_member_listed_twice_in_one_project():
    problem = only_problem([project(members=["alice", "alice"])])
    assert "members[1] = 'alice': listed twice in this project." in problem


def test_two_projects_with_one_name():
    problem = only_problem([project("team-a"), project("team-a")])
    assert "projects[1] (team-a).name = 'team-a': duplicates projects[0] (team-a)" in problem


@pytest.mark.parametrize("name", ["kube-system", "istio-system", "kserve", "default", "kube-mine"])
def test_a_project_in_a_system_namespace(name):
    problem = only_problem([project(name)])
    assert f"projects[0] ({name}).name = {name!r}: not a namespace for a project:" in problem
    assert "Fix: give the project a namespace of its own" in problem


@pytest.mark.parametrize("name", ["svc", "local", "com"])
def test_a_project_name_that_ends_other_namespaces_hosts(name):
    # Its policy's `*.<name>` would match hosts of every other namespace
    # (`x.ns.svc`, `x.svc.cluster.local`, `x.ns.example.com`).
    problem = only_problem([project(name)])
    assert f"projects[0] ({name}).name = {name!r}: the project's token policy would cover " \
           "other namespaces' hosts" in problem
    assert "Fix: give the project another name." in problem


def test_only_the_domains_last_label_clashes():
    assert access_config.host_suffix_clashes("example", "example.com") is None
    assert access_config.host_suffix_clashes("org", "models.example.org")
    assert access_config.host_suffix_clashes("team-a", "example.com") is None


def test_two_tokens_with_one_name():
    problem = only_problem([project(tokens=[{"name": "ci", "expires": "2027-01-01"},
                                            {"name": "ci", "expires": "2027-02-01"}])])
    assert "tokens[1] (ci).name = 'ci': duplicates another token of this project." in problem


@pytest.mark.parametrize("resource,value,quota", [("cpu", "2", {"cpu": "1500m"}),
                                                  ("memory", "3Gi", {"memory": "2Gi"})])
def test_a_model_larger_than_its_projects_quota(resource, value, quota):
    problem = only_problem([project(quota=quota, tokens=[{"name": "ci", "expires": "2027-01-01"}])],
                           [model(resources={resource: value})])
    assert f"models[0] (tf-flower).resources.{resource} = {value!r}: more than the whole " \
           f"{resource} quota of project team-a" in problem
    assert f"Fix: lower the model's {resource}, or raise projects (team-a).quota.{resource}." in problem


def test_a_model_that_fits_the_quota_exactly_is_fine():
    _, items, warnings = check([project(quota={"cpu": "500m", "memory": "1Gi"},
                                        tokens=[{"name": "ci", "expires": "2027-01-01"}])],
                               [model(resources={"cpu": "0.5", "memory": "1024Mi"})])
    assert items == [] and warnings == []


def test_models_that_fit_alone_but_not_together_warn():
    _, items, warnings = check([project(quota={"cpu": "1"}, tokens=[{"name": "ci", "expires": "2027-01-01"}])],
                               [model(resources={"cpu": "600m"}),
                                model("b", resources={"cpu": "500m"})])
    assert items == []
    assert len(warnings) == 1 and "projects (team-a).quota.cpu = '1': the project's models ask" in warnings[0]


def test_a_protected_model_in_a_project_without_tokens_warns():
    config, items, warnings = check([project()], [model()])
    assert items == []
    assert warnings == [
        "kserve-cluster:models[0] (tf-flower) = 'team-a/tf-flower': the model is in project team-a, "
        "which lists no tokens, and is not public: nobody can call it through the gateway. "
        "Fix: add a token to project team-a (tokens: [{name: ci, expires: 'YYYY-MM-DD'}]), "
        "or set public: true."]


def test_a_public_model_or_a_token_silences_that_warning():
    assert check([project()], [model(public=True)])[2] == []
    assert check([project(tokens=[{"name": "ci", "expires": "2027-01-01"}])], [model()])[2] == []


CI = [{"name": "ci", "expires": "2027-01-01"}]


def test_a_model_one_letter_off_a_project_warns_with_the_project():
    _, items, warnings = check([project("team-ml", tokens=CI)],
                               [model("m", namespace="team-ml"), model(namespace="team-m1")])
    assert items == []
    assert warnings == [
        "kserve-cluster:models[1] (tf-flower).namespace = 'team-m1': not a project's namespace, "
        "so the model is served to anyone who reaches the gateway, without a token; did you "
        "mean project team-ml? Fix: write namespace: team-ml to serve it with the project's "
        "tokens; if it is meant to be open, give it a namespace less like a project's name."]


def test_a_namespace_unlike_any_project_does_not_warn():
    assert check([project("team-ml", tokens=CI)],
                 [model("m", namespace="team-ml"), model(namespace="kserve-test")])[2] == []


def test_a_project_whose_tokens_open_no_model_warns():
    for models in ([model(namespace="kserve-test")], [model(public=True)]):
        _, items, warnings = check([project(tokens=CI)], models)
        assert items == []
        assert warnings == [
            "kserve-cluster:projects (team-a).tokens = ['ci']: no model in namespace team-a "
            "needs a token (none, or only public ones), so the project's tokens open nothing. "
            "Fix: put the model the tokens are for in namespace team-a, or remove the tokens."]


@pytest.mark.parametrize("expires", ["2099-01-01", "31/12/2026"])
def test_a_refused_token_adds_no_warning_that_the_project_has_none(expires):
    _, items, warnings = check([project(tokens=[{"name": "ci", "expires": expires}])], [model()])
    assert len(items) == 1 and "tokens[0] (ci).expires" in items[0]
    assert warnings == []


def test_public_outside_a_project_warns_that_it_changes_nothing():
    _, items, warnings = check([project()], [model(namespace="kserve-test", public=True)])
    assert items == []
    assert len(warnings) == 1 and "models[0] (tf-flower).public = True" in warnings[0]


def test_public_must_be_a_boolean():
    problem = only_problem(None, [model(namespace="kserve-test", public="yes")])
    assert "models[0] (tf-flower).public = 'yes': must be true or false." in problem


@pytest.mark.parametrize("access,key", [({"certificateValidityDays": 1}, "certificateValidityDays"),
                                        ({"certificateValidityDays": 400}, "certificateValidityDays"),
                                        ({"certificateValidityDays": 30, "renewBeforeDays": 30},
                                         "renewBeforeDays"),
                                        ({"renewBeforeDays": 0}, "renewBeforeDays"),
                                        ({"signingKeyGeneration": 0}, "signingKeyGeneration"),
                                        ({"signingKeyGeneration": "2"}, "signingKeyGeneration"),
                                        ({"maxTokenDays": 0}, "maxTokenDays"),
                                        ({"maxTokenDays": 3651}, "maxTokenDays"),
                                        ({"maxTokenDays": "90"}, "maxTokenDays")])
def test_access_settings_out_of_range(access, key):
    problem = only_problem(None, None, access)
    assert f"kserve-cluster:access.{key} = " in problem


def test_renew_before_defaults_to_a_third_of_the_validity():
    config, items, _ = check(None, None, {"certificateValidityDays": 30})
    assert items == [] and config.settings == AccessSettings(30, 10, 1)


def test_typos_in_keys_are_named_with_the_close_match():
    _, items, _ = check([{"name": "team-a", "quotas": {}, "members": [],
                          "tokens": [{"name": "ci", "expiry": "2027-01-01"}]}],
                        None, {"certificateValidity": 30})
    joined = "\n".join(items)
    assert "projects[0] (team-a).quotas = {}: unknown key; did you mean 'quota'?" in joined
    assert "tokens[0] (ci).expiry = '2027-01-01': unknown key; did you mean 'expires'?" in joined
    assert "access.certificateValidity = 30: unknown key; did you mean 'certificateValidityDays'?" in joined


def test_every_problem_is_reported_together_by_the_stack_config():
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({
            "nodes": NODES,
            "projects": [{"name": "Team_A", "quota": {"cpu": "lots"}, "members": ["Alice"],
                          "tokens": [{"name": "ci", "expires": "2999-01-01"}]},
                         {"name": "team-b", "quota": {"memory": "1Gi"}},
                         {"name": "team-b"}],
            "models": [model(namespace="team-b", resources={"memory": "2Gi"})],
            "projets": [],
        }, has_secret_private_key=True)
    problems = caught.value.problems
    assert len(problems) == 7, problems
    text = str(caught.value)
    assert text.startswith("7 problems in the stack config (nothing was changed on any node):")
    for part in ("projects[0] (Team_A).name", "quota.cpu = 'lots'", "members[0] = 'Alice'",
                 "tokens[0] (ci).expires = '2999-01-01'", "projects[2] (team-b).name",
                 "models[0] (tf-flower).resources.memory = '2Gi'",
                 "projets = []: unknown key; did you mean 'projects'?"):
        assert part in text, part
    assert all(" Fix: " in p for p in problems)


def test_the_stack_config_carries_the_access_config():
    config = parse_stack_config({"nodes": NODES, "projects": [project(members=["alice"])],
                                 "access": {"certificateValidityDays": 60}},
                                has_secret_private_key=True)
    assert [p.name for p in config.access.projects] == ["team-a"]
    assert config.access.settings.certificate_validity_days == 60
    assert config.access.settings.renew_before_days == 20
