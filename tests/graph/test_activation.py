"""Spreading activation over CSR layers: hand-checked graphs, the networkx reference,
layered adjacency, bad input and the module's own examples.

Unless a test says otherwise the numbers use weight 1, decay 0.5, no fan-out or fan-in
normalisation (exponents 0), unit type gains and threshold 0, so each hop simply halves
what passes.
"""

from __future__ import annotations

import doctest
import math

import networkx as nx
import numpy as np
import pytest

import hippograph.graph.activation
from hippograph.graph.activation import (
    CSR,
    REVERSE,
    ActivationParams,
    Workspace,
    csr_from_edges,
    path_to,
    paths_to,
    spread_activation,
    spread_activation_networkx,
)
from hippograph.graph.model import AssociationType


def graph_of(n: int, edges: list[tuple[int, int, float, int]]) -> CSR:
    """CSR of ``n`` nodes from (src, dst, weight, type) rows, stored both ways."""
    if not edges:
        return CSR.empty(n)
    src, dst, w, t = zip(*edges, strict=True)
    return csr_from_edges(n, np.array(src), np.array(dst), np.array(w), np.array(t))


def plain(**overrides: object) -> ActivationParams:
    """Weight-only spreading: decay 0.5, no degree normalisation, unit type gains."""
    defaults: dict[str, object] = {
        "decay": 0.5,
        "fanout_exponent": 0.0,
        "fanin_exponent": 0.0,
        "threshold": 0.0,
        "type_multipliers": (1.0,) * len(AssociationType),
    }
    return ActivationParams(**(defaults | overrides))  # type: ignore[arg-type]


def spread(
    layers: CSR | list[CSR],
    seeds: list[int],
    energy: list[float],
    params: ActivationParams,
    **kwargs: object,
) -> hippograph.graph.activation.Activation:
    layers = [layers] if isinstance(layers, CSR) else layers
    return spread_activation(
        layers,
        np.array(seeds, np.int64),
        np.array(energy, np.float64),
        params,
        **kwargs,  # type: ignore[arg-type]
    )


# -- CSR construction -------------------------------------------------------------------


def test_csr_from_edges_stores_each_edge_in_both_directions_marking_the_reverse() -> None:
    g = graph_of(4, [(0, 1, 0.5, 2), (1, 3, 0.25, 5)])
    assert g.n_nodes == 4
    assert g.n_edges == 4
    rows = {
        i: sorted(
            zip(
                g.indices[g.indptr[i] : g.indptr[i + 1]].tolist(),
                g.weights[g.indptr[i] : g.indptr[i + 1]].tolist(),
                g.types[g.indptr[i] : g.indptr[i + 1]].tolist(),
                strict=True,
            )
        )
        for i in range(4)
    }
    # the entry stored against an edge's direction carries type + REVERSE (the number of types)
    assert rows == {
        0: [(1, 0.5, 2)],
        1: [(0, 0.5, 2 + REVERSE), (3, 0.25, 5)],
        2: [],
        3: [(1, 0.25, 5 + REVERSE)],
    }
    assert g.degree().tolist() == [1, 2, 0, 1]
    assert g.degree(6).tolist() == [1, 2, 0, 1, 0, 0]


def test_csr_from_edges_rejects_endpoints_outside_the_node_range() -> None:
    with pytest.raises(ValueError, match="endpoints"):
        csr_from_edges(2, np.array([0]), np.array([2]), np.ones(1), np.zeros(1))
    with pytest.raises(ValueError, match="endpoints"):
        csr_from_edges(2, np.array([-1]), np.array([1]), np.ones(1), np.zeros(1))


# -- hand-checked spreads -----------------------------------------------------------------


def test_activation_along_a_path_halves_per_hop_and_echoes_back() -> None:
    # 0 - 1 - 2 - 3, seed 0 with energy 1, three hops:
    #   hop 1: frontier {0: 1}          -> 1 gets 0.5
    #   hop 2: frontier {1: 0.5}        -> 0 gets 0.25, 2 gets 0.25
    #   hop 3: frontier {0: .25, 2: .25} -> 1 gets .125 + .125, 3 gets .125
    # totals: 0 = 1 + .25, 1 = .5 + .25, 2 = .25, 3 = .125
    g = graph_of(4, [(0, 1, 1.0, 0), (1, 2, 1.0, 0), (2, 3, 1.0, 0)])
    a = spread(g, [0], [1.0], plain(hops=3))
    assert a.as_dict() == pytest.approx({0: 1.25, 1: 0.75, 2: 0.25, 3: 0.125})
    hop = dict(zip(a.nodes.tolist(), a.hop.tolist(), strict=True))
    assert hop == {0: 0, 1: 1, 2: 2, 3: 3}
    # one hop fewer and node 3 is out of reach
    assert 3 not in spread(g, [0], [1.0], plain(hops=2)).as_dict()


@pytest.mark.parametrize(
    ("exponent", "per_leaf"),
    [
        # hop 1: leaf 1 (degree 1) gives the hub 1 * 0.5 / 1 = 0.5
        # hop 2: the hub (degree 4) gives each leaf 0.5 * 0.5 / 4 ** exponent
        (0.0, 0.25),  # no normalisation
        (0.5, 0.125),  # / sqrt(4) = / 2
        (1.0, 0.0625),  # / 4: the hub's energy is shared out
    ],
)
def test_fanout_normalisation_damps_what_a_hub_passes_on(exponent: float, per_leaf: float) -> None:
    star = graph_of(5, [(0, leaf, 1.0, 0) for leaf in (1, 2, 3, 4)])
    a = spread(star, [1], [1.0], plain(hops=2, fanout_exponent=exponent))
    assert a.as_dict() == {
        1: pytest.approx(1.0 + per_leaf),  # the seed gets its share back
        0: pytest.approx(0.5),
        2: pytest.approx(per_leaf),
        3: pytest.approx(per_leaf),
        4: pytest.approx(per_leaf),
    }


@pytest.mark.parametrize(
    ("exponent", "hub", "per_leaf"),
    [
        # hop 1: leaf 1 gives the hub (degree 4) 1 * 0.5 / 4 ** exponent
        # hop 2: the hub gives each leaf (degree 1) hub * 0.5 / 1 ** exponent
        (0.0, 0.5, 0.25),
        (0.5, 0.25, 0.125),  # / sqrt(4) on the way in
        (1.0, 0.125, 0.0625),  # / 4 on the way in
    ],
)
def test_fanin_normalisation_damps_what_a_hub_soaks_up(
    exponent: float, hub: float, per_leaf: float
) -> None:
    star = graph_of(5, [(0, leaf, 1.0, 0) for leaf in (1, 2, 3, 4)])
    a = spread(star, [1], [1.0], plain(hops=2, fanin_exponent=exponent))
    assert a.as_dict() == pytest.approx(
        {1: 1.0 + per_leaf, 0: hub, 2: per_leaf, 3: per_leaf, 4: per_leaf}
    )


def test_fanout_and_fanin_together_are_the_symmetric_normalisation() -> None:
    # one hop over 0 - 1 where deg(0) = 3 and deg(1) = 2, both exponents 1/2:
    # 1 gets 1 * 0.5 / (sqrt(3) * sqrt(2))
    g = graph_of(5, [(0, 1, 1.0, 0), (0, 2, 1.0, 0), (0, 3, 1.0, 0), (1, 4, 1.0, 0)])
    a = spread(g, [0], [1.0], plain(hops=1, fanout_exponent=0.5, fanin_exponent=0.5))
    assert a.as_dict()[1] == pytest.approx(0.5 / math.sqrt(6))
    assert a.as_dict()[2] == pytest.approx(0.5 / math.sqrt(3))


def test_two_seeds_converging_on_one_node_add_up_and_the_stronger_is_its_parent() -> None:
    # 0 -(w 1.0)- 2 -(w 0.5)- 1; one hop.
    # 2 gets 1.0 * 1.0 * 0.5 = 0.5 from seed 0 and 0.8 * 0.5 * 0.5 = 0.2 from seed 1.
    g = graph_of(3, [(0, 2, 1.0, 0), (1, 2, 0.5, 3)])
    a = spread(g, [0, 1], [1.0, 0.8], plain(hops=1))
    assert a.as_dict() == pytest.approx({0: 1.0, 1: 0.8, 2: 0.7})
    assert path_to(a, 2) == [(0, 0, 1.0)]
    # seed 1 at energy 4 gives 4 * 0.5 * 0.5 = 1.0 > 0.5: now it brought node 2
    b = spread(g, [0, 1], [1.0, 4.0], plain(hops=1))
    assert b.as_dict()[2] == pytest.approx(1.5)
    assert path_to(b, 2) == [(1, 3, 0.5)]


def test_type_multipliers_scale_each_edge_type() -> None:
    # 0 -(type 2)- 1 and 0 -(type 0)- 2; type 2 counts a quarter, type 5 nothing.
    g = graph_of(4, [(0, 1, 1.0, 2), (0, 2, 1.0, 0), (0, 3, 1.0, 5)])
    gains = (1.0, 1.0, 0.25, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0)
    a = spread(g, [0], [1.0], plain(hops=1, type_multipliers=gains))
    # 1 gets 1 * 0.25 * 0.5 = 0.125, 2 gets 0.5, and 3 gets 0: it is not reached at all
    assert a.as_dict() == pytest.approx({0: 1.0, 1: 0.125, 2: 0.5})


def test_threshold_cuts_a_weak_branch_and_everything_behind_it() -> None:
    # 0 -(1.0)- 1,  0 -(0.1)- 2 -(1.0)- 3.  Node 2 would get 0.1 * 0.5 = 0.05.
    g = graph_of(4, [(0, 1, 1.0, 0), (0, 2, 0.1, 0), (2, 3, 1.0, 0)])
    cut = spread(g, [0], [1.0], plain(hops=2, threshold=0.06))
    # 0.05 < 0.06: 2 and 3 never hear of it; 0 still gets 0.25 back from 1
    assert cut.as_dict() == pytest.approx({0: 1.25, 1: 0.5})
    # threshold 0.04: 2 gets 0.05, but 3 would get 0.025 < 0.04
    partial = spread(g, [0], [1.0], plain(hops=2, threshold=0.04))
    assert partial.as_dict() == pytest.approx({0: 1.25, 1: 0.5, 2: 0.05})


def test_max_frontier_lets_only_the_strongest_receivers_spread_on() -> None:
    # seed 0 with children 1 (w 1.0), 2 (w 0.8), 3 (w 0.6); each child has a leaf 4, 5, 6.
    # hop 1: 1 = 0.5, 2 = 0.4, 3 = 0.3.
    g = graph_of(
        7,
        [(0, 1, 1.0, 0), (0, 2, 0.8, 0), (0, 3, 0.6, 0), (1, 4, 1, 0), (2, 5, 1, 0), (3, 6, 1, 0)],
    )
    narrow = spread(g, [0], [1.0], plain(hops=2, max_frontier=1))
    # only 1 spreads at hop 2: 0 gets 0.25 back, 4 gets 0.25; 5 and 6 are never reached
    assert narrow.as_dict() == pytest.approx({0: 1.25, 1: 0.5, 2: 0.4, 3: 0.3, 4: 0.25})
    wide = spread(g, [0], [1.0], plain(hops=2, max_frontier=3))
    # all three spread: 0 gets back .5*1*.5 + .4*.8*.5 + .3*.6*.5 = .25 + .16 + .09,
    # the leaves .25, .2, .15
    assert wide.as_dict() == pytest.approx(
        {
            0: 1.5,
            1: 0.5,
            2: 0.4,
            3: 0.3,
            4: 0.25,
            5: 0.2,
            6: 0.15,
        }
    )


def test_dead_nodes_neither_receive_nor_pass_energy() -> None:
    # 0 - 1 - 2 and 0 - 3; node 1 is dead.
    g = graph_of(4, [(0, 1, 1.0, 0), (1, 2, 1.0, 0), (0, 3, 1.0, 0)])
    alive = np.array([True, False, True, True])
    a = spread(g, [0], [1.0], plain(hops=3), alive=alive)
    assert 1 not in a.as_dict()
    assert 2 not in a.as_dict()  # only reachable through the dead node
    # 3 gets 0.5 on hop 1, gives 0 a quarter back on hop 2 and gets .125 again on hop 3
    assert a.as_dict() == pytest.approx({0: 1.25, 3: 0.625})
    # a dead seed is dropped: it starts nothing
    b = spread(g, [1], [1.0], plain(hops=3), alive=alive)
    assert b.as_dict() == {}
    assert len(b.nodes) == len(b.parent) == len(b.hop) == 0


def test_zero_hops_returns_the_seeds_only_with_duplicates_summed() -> None:
    g = graph_of(4, [(1, 2, 1.0, 0), (3, 2, 1.0, 0)])
    a = spread(g, [3, 3, 1], [0.5, 0.25, 1.0], plain(hops=0))
    assert a.as_dict() == pytest.approx({1: 1.0, 3: 0.75})
    assert (a.parent == -1).all()
    assert (a.via_type == -1).all()
    assert np.isnan(a.via_weight).all()
    assert (a.hop == 0).all()


def test_a_seed_without_edges_keeps_its_energy_and_reaches_nothing() -> None:
    g = graph_of(3, [(1, 2, 1.0, 0)])
    assert spread(g, [0], [0.7], plain(hops=4)).as_dict() == {0: pytest.approx(0.7)}


# -- paths --------------------------------------------------------------------------------


def test_path_to_returns_the_edge_chain_from_the_seed() -> None:
    # 0 -(type 1, w .9)- 1 -(type 4, w .7)- 2 -(type 6, w .6)- 3, and 0 - 4 directly
    g = graph_of(5, [(0, 1, 0.9, 1), (1, 2, 0.7, 4), (2, 3, 0.6, 6), (0, 4, 0.3, 7)])
    a = spread(g, [0], [1.0], plain(hops=3))
    assert path_to(a, 3) == [
        (0, 1, pytest.approx(0.9)),
        (1, 4, pytest.approx(0.7)),
        (2, 6, pytest.approx(0.6)),
    ]
    assert path_to(a, 4) == [(0, 7, pytest.approx(0.3))]
    assert path_to(a, 0) == []  # a seed
    assert path_to(a, 99) == []  # never reached
    # the path's length is the hop on which the node was first reached
    for node, hop in zip(a.nodes.tolist(), a.hop.tolist(), strict=True):
        assert len(path_to(a, node)) == hop


def test_paths_to_gives_every_path_that_path_to_gives() -> None:
    rng = np.random.default_rng(9)
    src, dst, w, t = random_edges(rng, 40, 90)
    a = spread_activation(
        [csr_from_edges(40, src, dst, w, t)], np.array([0, 5]), np.ones(2), plain(hops=4)
    )
    nodes = [*a.nodes.tolist(), 999]
    assert paths_to(a, nodes) == [path_to(a, n) for n in nodes]
    assert any(len(p) >= 2 for p in paths_to(a, nodes))


def test_a_node_reached_again_later_keeps_the_path_of_its_first_hop() -> None:
    # 0 - 1 - 2 and 0 - 2 weakly: 2 is reached on hop 1 (weakly) and again on hop 2.
    g = graph_of(3, [(0, 1, 1.0, 0), (1, 2, 1.0, 1), (0, 2, 0.1, 2)])
    a = spread(g, [0], [1.0], plain(hops=2))
    assert path_to(a, 2) == [(0, 2, pytest.approx(0.1))]
    assert a.as_dict()[2] == pytest.approx(0.05 + 0.25)


# -- the reference implementation ------------------------------------------------------


def random_edges(
    rng: np.random.Generator, n: int, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    src = rng.integers(0, n, m)
    dst = (src + rng.integers(1, n, m)) % n  # no self loops (stores drop them)
    weights = rng.uniform(0.05, 1.0, m).astype(np.float32)
    types = rng.integers(0, 8, m)
    return src, dst, weights, types


def as_networkx(n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray, t: np.ndarray) -> nx.Graph:
    g = nx.MultiGraph()
    g.add_nodes_from(range(n))
    for a, b, weight, type_ in zip(src.tolist(), dst.tolist(), w.tolist(), t.tolist(), strict=True):
        g.add_edge(a, b, weight=weight, type=type_)
    return g


@pytest.mark.parametrize("case", range(40))
def test_array_spread_equals_the_networkx_reference_on_random_graphs(case: int) -> None:
    rng = np.random.default_rng(1_000 + case)
    n = int(rng.integers(5, 120))
    m = int(rng.integers(0, 4 * n))
    src, dst, w, t = random_edges(rng, n, m)
    params = ActivationParams(
        hops=int(rng.integers(0, 5)),
        decay=float(rng.uniform(0.2, 0.9)),
        fanout_exponent=float(rng.choice([0.0, 0.5, 1.0, rng.uniform(0, 1)])),
        fanin_exponent=float(rng.choice([0.0, 0.5, rng.uniform(0, 1)])),
        threshold=float(rng.choice([0.0, 1e-3, 1e-2])),
        max_frontier=int(rng.integers(1, 40)),
        type_multipliers=tuple(rng.uniform(0.0, 1.5, len(AssociationType)).tolist()),
    )
    k = int(rng.integers(1, 6))
    seeds = rng.integers(0, n, k)
    energy = rng.uniform(0.1, 1.0, k)

    got = spread_activation([csr_from_edges(n, src, dst, w, t)], seeds, energy, params).as_dict()
    want = spread_activation_networkx(
        as_networkx(n, src, dst, w, t), seeds.tolist(), energy.tolist(), params
    )
    assert got.keys() == want.keys()
    for node, value in want.items():
        assert got[node] == pytest.approx(value, rel=1e-9, abs=1e-12), node


@pytest.mark.parametrize("case", range(15))
def test_a_base_and_a_delta_layer_spread_like_one_merged_csr(case: int) -> None:
    rng = np.random.default_rng(2_000 + case)
    n = int(rng.integers(5, 80))
    m = int(rng.integers(1, 3 * n))
    src, dst, w, t = random_edges(rng, n, m)
    cut = int(rng.integers(0, m + 1))
    base = csr_from_edges(n, src[:cut], dst[:cut], w[:cut], t[:cut])
    # the delta may cover fewer nodes than the base (nodes added after it was built
    # are the usual case the other way round; both must work)
    delta_n = int(max(src[cut:].max(initial=-1), dst[cut:].max(initial=-1)) + 1)
    delta = csr_from_edges(delta_n, src[cut:], dst[cut:], w[cut:], t[cut:])
    merged = csr_from_edges(n, src, dst, w, t)
    params = ActivationParams(
        hops=3,
        decay=0.6,
        fanout_exponent=0.5,
        fanin_exponent=0.5,
        threshold=1e-4,
        max_frontier=1_000,
    )
    seeds = rng.integers(0, n, 3)
    energy = rng.uniform(0.1, 1.0, 3)
    layered = spread_activation([base, delta], seeds, energy, params).as_dict()
    reversed_ = spread_activation([delta, base], seeds, energy, params).as_dict()
    single = spread_activation([merged], seeds, energy, params).as_dict()
    assert layered.keys() == single.keys() == reversed_.keys()
    for node, value in single.items():
        assert layered[node] == pytest.approx(value, rel=1e-9)
        assert reversed_[node] == pytest.approx(value, rel=1e-9)


# -- bad input ------------------------------------------------------------------------------


def test_mismatched_seeds_and_energy_raise_value_error() -> None:
    g = graph_of(3, [(0, 1, 1.0, 0)])
    with pytest.raises(ValueError, match="same length"):
        spread_activation([g], np.array([0, 1]), np.array([1.0]), plain())
    with pytest.raises(ValueError, match="1-D"):
        spread_activation([g], np.array([[0, 1]]), np.array([[1.0, 1.0]]), plain())


@pytest.mark.parametrize("bad", [{"hops": -1}, {"max_frontier": 0}])
def test_negative_hops_or_an_empty_frontier_raise_value_error(bad: dict[str, int]) -> None:
    g = graph_of(3, [(0, 1, 1.0, 0)])
    with pytest.raises(ValueError, match=r"hops|max_frontier"):
        spread_activation([g], np.array([0]), np.array([1.0]), plain(**bad))


def test_no_seeds_give_an_empty_activation() -> None:
    g = graph_of(3, [(0, 1, 1.0, 0)])
    a = spread_activation([g], np.zeros(0, np.int64), np.zeros(0), plain())
    assert a.as_dict() == {}


# -- the module's own examples ------------------------------------------------------------


def test_module_doctests_pass() -> None:
    result = doctest.testmod(hippograph.graph.activation, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 4
    assert result.failed == 0


def test_a_reused_workspace_gives_the_same_spread_and_is_left_clean() -> None:
    rng = np.random.default_rng(11)
    n, m = 300, 1200
    g = csr_from_edges(
        n,
        rng.integers(0, n, m),
        rng.integers(0, n, m),
        rng.random(m).astype(np.float32),
        rng.integers(0, 8, m),
    )
    params = ActivationParams(hops=3)
    workspace = Workspace()
    for _ in range(5):
        seeds = rng.choice(n, 7, replace=False)
        energy = rng.random(7)
        fresh = spread_activation([g], seeds, energy, params)
        reused = spread_activation([g], seeds, energy, params, workspace=workspace)
        assert reused.as_dict() == pytest.approx(fresh.as_dict())
        assert not workspace.reached.any()
        assert not workspace.total.any()
