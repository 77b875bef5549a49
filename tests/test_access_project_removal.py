"""Removing a project whose models stay in the stack file is refused (issue 16):
the models would be served without a token. The last run's projects come from the
stack's own outputs (components/access/project_removal.py)."""
import copy

import pytest

from access_fixtures import access_config, resolve
from components.access import project_removal
from components.access.config import AccessConfig, Project
from components.offline.program import ClusterMocks, evaluate
from components.serving.config import Model

FLOWERS = "gs://kfserving-examples/models/tensorflow/flowers"


def model(name, namespace, public=False):
    return Model(name=name, namespace=namespace, format="tensorflow", storage_uri=FLOWERS,
                 public=public)


MODELS = [model("tf-flower", "team-a"), model("showcase", "team-a", public=True),
          model("iris", "team-b"), model("open", "kserve-test")]


# --------------------------------------------------------------- the pure rule

def test_previous_projects_come_from_the_projects_output_and_the_models_output():
    assert project_removal.previous_project_namespaces(None) == set()
    assert project_removal.previous_project_namespaces({}) == set()
    assert project_removal.previous_project_namespaces({"projects": ["team-a", "team-c"]}) \
        == {"team-a", "team-c"}
    # A stack deployed before the `projects` output: its models said which project.
    older = {"models": {"team-b/iris": {"name": "iris", "namespace": "team-b",
                                        "project": "team-b", "needsToken": True},
                        "kserve-test/open": {"name": "open", "namespace": "kserve-test"}}}
    assert project_removal.previous_project_namespaces(older) == {"team-b"}


def test_dropping_a_project_whose_protected_models_stay_is_refused():
    now = AccessConfig(projects=(Project("team-b"),))
    error = project_removal.refusal({"team-a", "team-b"}, now, MODELS)
    assert error is not None
    text = str(error)
    assert "nothing was changed on any node" in text
    assert "project team-a was removed" in text and "namespace team-a" in text
    assert "tf-flower (models[0])" in text
    assert "showcase" not in text  # public already: removing the project changes nothing
    assert "iris" not in text and "kserve-test" not in text
    assert "add `public: true` to the models, or move or remove them" in text
    assert "kserve-cluster:projects = ['team-b']" in text


def test_each_dropped_namespace_is_named_with_all_its_models():
    models = MODELS + [model("second", "team-b")]
    error = project_removal.refusal({"team-a", "team-b"}, AccessConfig(), models)
    assert len(error.problems) == 2
    assert "iris (models[2]), second (models[4])" in error.problems[1]


@pytest.mark.parametrize("previous, now, models", [
    (set(), AccessConfig(), MODELS),                                      # a first `up`
    ({"team-a"}, AccessConfig(projects=(Project("team-a"),)), MODELS),    # project kept
    ({"team-a"}, AccessConfig(), [model("tf-flower", "team-a", public=True)]),  # made public
    ({"team-a"}, AccessConfig(), [model("tf-flower", "team-z")]),          # moved away
    ({"team-a"}, AccessConfig(), [model("iris", "team-b")]),               # removed
    ({"kserve-test"}, AccessConfig(projects=(Project("kserve-test"),)), MODELS),  # became one
])
def test_what_is_not_refused(previous, now, models):
    assert project_removal.refusal(previous, now, models) is None
    assert project_removal.verdict({"projects": sorted(previous)}, now, models) \
        == project_removal.KEPT


# --------------------------------------------------------------- the program, under the mocks

def without_team_a():
    config = access_config()
    config["projects"] = [p for p in config["projects"] if p["name"] != "team-a"]
    return config


def test_the_projects_output_lists_the_project_namespaces():
    evaluation = evaluate(access_config())
    assert resolve(evaluation.outputs["projects"]) == ["team-a", "team-b", "team-c"]


def test_a_first_up_is_not_refused():
    # No outputs yet (no cluster): the mocks' StackReference reads none.
    evaluation = evaluate(without_team_a())
    assert resolve(evaluation.outputs["projects"]) == ["team-b", "team-c"]


def test_removing_a_project_whose_models_stay_stops_the_run_before_any_node():
    previous = {"projects": ["team-a", "team-b", "team-c"]}
    with pytest.raises(Exception) as caught:
        evaluate(without_team_a(), mocks=ClusterMocks(False, previous_outputs=previous))
    message = str(caught.value)
    assert "project team-a was removed" in message
    assert "tf-flower (models[0])" in message and "showcase" not in message
    assert "add `public: true` to the models, or move or remove them" in message
    assert "Traceback" not in message
    registered = {r.name for r in caught.value.registrations}
    # The run got as far as the cluster layer, where the gate sits beside preflight.
    # Whether the read-only preflight commands are registered by the time the error
    # surfaces depends on the event loop's order, so they are not asserted on.
    assert {"cluster", "cp1"} <= registered
    # Nothing past the gate: no node prepared, nothing on the cluster.
    assert not [n for n in registered if n.endswith(("-prepare", "-kubeadm-init"))]
    assert not [r for r in caught.value.registrations if r.type.startswith("kubernetes:")
                and r.type != "pulumi:providers:kubernetes"]


def test_the_refusal_also_reads_older_outputs_without_the_projects_output():
    previous = {"models": {"team-a/tf-flower": {"namespace": "team-a", "project": "team-a",
                                                "needsToken": True}}}
    with pytest.raises(Exception, match="project team-a was removed"):
        evaluate(without_team_a(), mocks=ClusterMocks(False, previous_outputs=previous))


def test_making_the_models_public_lets_the_project_go():
    config = without_team_a()
    for item in config["models"]:
        if item["namespace"] == "team-a":
            item["public"] = True
    previous = {"projects": ["team-a", "team-b", "team-c"]}
    evaluation = evaluate(config, mocks=ClusterMocks(False, previous_outputs=previous))
    assert resolve(evaluation.outputs["projects"]) == ["team-b", "team-c"]
    assert evaluation.named("cp1-prepare").inputs["triggers"] == ["preflight passed"]


def test_the_previous_outputs_change_nothing_when_no_project_goes():
    previous = {"projects": ["team-a", "team-b", "team-c"]}
    first = evaluate(access_config())
    again = evaluate(access_config(), mocks=ClusterMocks(False, previous_outputs=previous))
    assert sorted((r.name, r.plain) for r in first.registrations) \
        == sorted((r.name, r.plain) for r in again.registrations)


def test_removing_every_project_is_refused_too():
    config = copy.deepcopy(access_config())
    config["projects"] = []
    previous = {"projects": ["team-a", "team-b", "team-c"]}
    with pytest.raises(Exception) as caught:
        evaluate(config, mocks=ClusterMocks(False, previous_outputs=previous))
    message = str(caught.value)
    for namespace in ("team-a", "team-b", "team-c"):
        assert f"project {namespace} was removed" in message
