"""The layers across train moves: the steps' data (versions.LAYER_PATHS) against the
support ranges, and the per-run planner (components/upgrade/layers.py) over every state a
cluster can be in along each move."""
import itertools

import pytest

from components import versions
from components.upgrade.layers import KUBERNETES, NET_ISTIO, net_istio_for, plan_layers
from components.versions import AFTER, BEFORE, EITHER, LAYER_PATHS, TRAINS, release_key

MOVES = [(old, new) for old, new in zip(list(TRAINS), list(TRAINS)[1:])]


def minor(version):
    return release_key(version)[:2]


def minor_text(version):
    return ".".join(map(str, minor(version)))


def chain(old, new, layer):
    """The layer's versions along a move: the old train's, then each step."""
    start = versions.train_layer_versions(TRAINS[old])[layer]
    return [start] + [s.version for s in LAYER_PATHS.get(new, ()) if s.layer == layer]


def supports(layer, version, kubernetes_minor):
    support = versions.support_of(layer, version)
    return support is None or support.supports(kubernetes_minor)


@pytest.mark.parametrize("old,new", MOVES)
def test_each_layer_ends_at_the_new_train_in_order(old, new):
    wanted = versions.train_layer_versions(TRAINS[new])
    for layer in versions.LAYERS:
        steps = chain(old, new, layer)
        assert steps[-1] == wanted[layer], (new, layer, steps)
        keys = [release_key(v) for v in steps]
        assert keys == sorted(set(keys)), (new, layer, steps)  # strictly up, no repeat
    for step in LAYER_PATHS.get(new, ()):
        assert step.layer in versions.LAYERS and step.when in (BEFORE, AFTER, EITHER)
        assert step.page.startswith("https://"), step


@pytest.mark.parametrize("old,new", MOVES)
def test_no_layer_skips_a_minor_it_must_not_skip(old, new):
    for layer in versions.ONE_MINOR_AT_A_TIME:
        steps = chain(old, new, layer)
        for before, after in zip(steps, steps[1:]):
            assert minor(after)[0] == minor(before)[0] and minor(after)[1] - minor(before)[1] <= 1, \
                (layer, before, after)


@pytest.mark.parametrize("old,new", MOVES)
def test_every_step_supports_the_minors_its_place_says(old, new):
    for step in LAYER_PATHS.get(new, ()):
        support = versions.support_of(step.layer, step.version)
        if step.layer in versions.UNRANGED or step.layer == "KServe":
            continue
        assert support is not None, step  # every ranged step has its range in SUPPORT
        if step.when in (BEFORE, EITHER):
            assert support.supports(old), step
        if step.when in (AFTER, EITHER):
            assert support.supports(new), step
        if step.when == BEFORE:
            # BEFORE only where it is needed: the version before it stops short of `new`.
            steps = chain(old, new, step.layer)
            previous = steps[steps.index(step.version) - 1]
            assert not supports(step.layer, previous, new) or step.layer == "Knative Serving", step


@pytest.mark.parametrize("old,new", MOVES)
def test_a_layer_that_does_not_support_the_new_minor_moves_before_it(old, new):
    for layer in versions.LAYERS:
        start = versions.train_layer_versions(TRAINS[old])[layer]
        if not supports(layer, start, new):
            first = [s for s in LAYER_PATHS[new] if s.layer == layer][0]
            assert first.when == BEFORE, (layer, start)


@pytest.mark.parametrize("old,new", MOVES)
def test_net_istio_pairs_with_the_istio_it_steps_with(old, new):
    istio_minors = {minor_text(v) for v in chain(old, new, "Istio")}
    for step in LAYER_PATHS.get(new, ()):
        if step.layer == "Knative Serving":
            assert minor_text(step.net_istio) == minor_text(step.version)
            assert versions.NET_ISTIO_TESTED_ISTIO[minor_text(step.net_istio)] in istio_minors
            assert step.when == BEFORE or not any(
                s.layer == "Istio" and s.when == BEFORE and
                minor_text(s.version) == versions.NET_ISTIO_TESTED_ISTIO[minor_text(step.version)]
                for s in LAYER_PATHS[new]), step


def test_calico_and_kserve_take_one_step_per_move():
    # Their resources' shape follows their version (the Calico CRD chart, KServe's chart
    # split, the deployment mode's name): one step means it is the train's from run one.
    for new, steps in LAYER_PATHS.items():
        for layer in ("Calico", "KServe"):
            assert len([s for s in steps if s.layer == layer]) <= 1, (new, layer)


# ----------------------------------------------------------------------- the planner

def train_state(minor_):
    train = TRAINS[minor_]
    return {KUBERNETES: train.kubernetes_version, **versions.train_layer_versions(train),
            NET_ISTIO: train.knative_net_istio_version}


def runs(current, target):
    """Every run's plan until the cluster stops moving."""
    plans = []
    for _ in range(12):
        plan = plan_layers(current, target)
        assert not plan.problems, plan.problems
        plans.append(plan)
        if plan.recorded() == current:
            break
        current = plan.recorded()
    return plans


@pytest.mark.parametrize("old,new", MOVES)
def test_a_train_move_walks_every_step_and_converges(old, new):
    target = TRAINS[new].kubernetes_version
    plans = runs(train_state(old), target)
    final = plans[-1].recorded()
    assert final == train_state(new)
    assert not plans[-1].moves and plans[-1].warning() is None
    # The first run announces every run after it; each later run one fewer.
    moving = [p for p in plans if p.moves or p.recorded()[KUBERNETES] != p.kubernetes_current]
    assert plans[0].runs_left == len(moving) - 1
    for index, plan in enumerate(moving):
        assert plan.runs_left == len(moving) - 1 - index
    # Every intermediate is installed, one step per layer per run.
    seen = {layer: [train_state(old)[layer]] for layer in versions.LAYERS}
    for plan in plans:
        for move in plan.moves:
            assert seen[move.layer][-1] == move.current
            seen[move.layer].append(move.version)
    for layer in versions.LAYERS:
        assert seen[layer] == chain(old, new, layer), layer


def test_the_1_32_move_takes_three_runs_istio_first():
    plans = runs(train_state("1.31"), TRAINS["1.32"].kubernetes_version)
    first = plans[0]
    assert not first.kubernetes_moves and first.kubernetes == TRAINS["1.31"].kubernetes_version
    assert first.versions["Istio"] == "1.25.5" and first.versions["Knative Serving"] == "knative-v1.18.2"
    assert first.versions[NET_ISTIO] == "knative-v1.18.1"
    assert first.runs_left == 2
    warning = first.warning()
    assert warning.startswith("run `pulumi up` again: ")
    assert "Istio 1.25.5 -> 1.26.8" in warning and "Kubernetes stays at" in warning
    assert "Istio must reach 1.25.5 first" in warning
    assert plans[1].kubernetes_moves and plans[1].versions["Istio"] == "1.26.8"
    assert plans[1].versions["Knative Serving"] == "knative-v1.19.9"
    assert plans[2].versions["cert-manager"] == "v1.19.6"


def all_states(old, new):
    """Each layer anywhere along its chain, Kubernetes at either end."""
    layers = versions.LAYERS
    for kube in (TRAINS[old].kubernetes_version, TRAINS[new].kubernetes_version):
        for combo in itertools.product(*(chain(old, new, layer) for layer in layers)):
            state = {KUBERNETES: kube, **dict(zip(layers, combo))}
            state[NET_ISTIO] = net_istio_for(state["Knative Serving"])
            yield state


@pytest.mark.parametrize("old,new", MOVES)
def test_from_any_state_on_the_way_every_run_is_legal_and_it_converges(old, new):
    target = TRAINS[new].kubernetes_version
    count = 0
    for start in all_states(old, new):
        count += 1
        current = start
        for _ in range(12):
            plan = plan_layers(current, target)
            assert not plan.problems, (start, plan.problems)
            on = minor_text(plan.kubernetes_current)
            moved = plan.kubernetes != plan.kubernetes_current
            for move in plan.moves:
                steps = chain(old, new, move.layer)
                # One step: the next release on the layer's way.
                assert steps.index(move.version) == steps.index(move.current) + 1, (start, move)
                if moved and minor(plan.kubernetes) != minor(plan.kubernetes_current):
                    assert supports(move.layer, move.version, new), (start, move)
                    if move.layer == "Calico":  # runs before the nodes
                        assert supports(move.layer, move.version, on), (start, move)
                else:
                    assert supports(move.layer, move.version, on), (start, move)
            if moved and minor(plan.kubernetes) != minor(plan.kubernetes_current):
                # The nodes move only when every layer already supports the new minor.
                for layer in versions.LAYERS:
                    assert supports(layer, current[layer], new), (start, layer)
            if plan.recorded() == current:
                break
            current = plan.recorded()
        assert current == train_state(new) | {NET_ISTIO: TRAINS[new].knative_net_istio_version}, start
    assert count > 1


def test_a_new_cluster_takes_the_train_directly():
    plan = plan_layers({}, TRAINS["1.33"].kubernetes_version)
    assert plan.kubernetes_moves and not plan.moves and plan.runs_left == 0
    assert plan.recorded() == train_state("1.33")
    assert plan.train().istio_version == TRAINS["1.33"].istio_version


def test_an_absent_layer_takes_the_train_directly():
    current = train_state("1.31")
    del current["Istio"]
    plan = plan_layers(current, TRAINS["1.32"].kubernetes_version)
    assert plan.versions["Istio"] == TRAINS["1.32"].istio_version
    assert "Istio" not in {m.layer for m in plan.moves}


def test_an_ordinary_up_moves_nothing():
    for minor_ in TRAINS:
        plan = plan_layers(train_state(minor_), TRAINS[minor_].kubernetes_version)
        assert not plan.moves and plan.kubernetes_moves and plan.warning() is None
        assert plan.train() == TRAINS[minor_]


def test_a_patch_move_within_the_train_moves_the_nodes_at_once():
    current = train_state("1.32") | {KUBERNETES: "1.32.2"}
    plan = plan_layers(current, TRAINS["1.32"].kubernetes_version)
    assert plan.kubernetes_moves and not plan.moves


def test_a_skipped_minor_moves_no_layer():
    # The preflight gate refuses it (components/upgrade/plan.py); the layers stay.
    plan = plan_layers(train_state("1.31"), TRAINS["1.33"].kubernetes_version)
    assert not plan.moves and not plan.later
    assert plan.versions["Istio"] == TRAINS["1.31"].istio_version


def test_a_layer_newer_than_the_train_is_refused():
    current = train_state("1.31") | {"Istio": "1.27.9"}
    plan = plan_layers(current, TRAINS["1.32"].kubernetes_version)
    assert any("Istio runs 1.27.9, newer than the 1.32 train" in p for p in plan.problems)


def test_a_layer_that_would_skip_a_minor_is_refused():
    current = train_state("1.31") | {"Istio": "1.23.4"}
    plan = plan_layers(current, TRAINS["1.32"].kubernetes_version)
    assert any("Istio runs 1.23.4" in p and "skips a minor" in p for p in plan.problems)


def test_istio_waits_for_knative_when_moving_alone_would_break_the_pair():
    # Istio already at 1.25 (a run that stopped after Istio): Knative catches up first.
    current = train_state("1.31") | {"Istio": "1.25.5"}
    plan = plan_layers(current, TRAINS["1.32"].kubernetes_version)
    assert plan.versions["Knative Serving"] == "knative-v1.18.2"
    assert plan.versions["Istio"] == "1.25.5"
