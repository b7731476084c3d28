"""kinn.analysis.edges: edge sampling against the layer itself, importance, pruning, refit and the plot."""
import copy
import json

import numpy as np
import pytest
import torch

from kinn.analysis import edges
from kinn.models.field import FieldModel
from kinn.solvers.kan import KAN

pytestmark = pytest.mark.usefixtures("float64")  # conftest.py

LO, HI = np.array([0.0, -1.0]), np.array([2.0, 3.0])


def field_model(widths=(2, 3, 2), **options) -> FieldModel:
    net = KAN(list(widths), grid=6, **options)
    with torch.no_grad():  # unit-size splines, so that every edge is clearly non-zero
        for layer in net.layers:
            layer.spline_weight.normal_()
    return FieldModel(net, LO, HI)


def points(n: int = 400) -> torch.Tensor:
    return torch.as_tensor(LO) + torch.rand(n, 2) * torch.as_tensor(HI - LO)


def zero_edge(net: KAN, l: int, i: int, j: int) -> None:
    with torch.no_grad():
        net.layers[l].spline_weight[j, i] = 0
        net.layers[l].base_weight[j, i] = 0


@pytest.mark.parametrize("between", ["tanh", "rescale"])
@pytest.mark.parametrize("basis", ["bspline", "chebyshev"])
def test_edge_samples_are_the_layers_own_edge_functions(basis, between):
    model, x = field_model(basis=basis, between=between, grid_range=(-1.5, 1.5)), points()
    samples = edges.edge_functions(model, x, n=50)
    # The inputs each layer sees, computed by hand: the scaling, then the squash after layer 0.
    h0 = model.scale(x)
    y0 = model.net.layers[0](h0)
    h1 = torch.tanh(y0) if between == "tanh" else 1.5 * torch.tanh(y0)
    for l, (h, s) in enumerate(zip((h0, h1), samples)):
        layer = model.net.layers[l]
        assert s.inputs.shape == (50, layer.in_features)
        assert s.values.shape == (50, layer.in_features, layer.out_features)
        np.testing.assert_allclose(s.lo, h.amin(0).detach().numpy(), rtol=0, atol=1e-14)
        np.testing.assert_allclose(s.hi, h.amax(0).detach().numpy(), rtol=0, atol=1e-14)
        for i in range(layer.in_features):
            for j in range(layer.out_features):
                # Direct evaluation: a copy of the layer with every other edge zeroed, fed the samples in
                # column i (the other columns arbitrary, their edges being zero functions).
                alone = copy.deepcopy(layer)
                keep = torch.zeros(layer.out_features, layer.in_features, dtype=torch.bool)
                keep[j, i] = True
                with torch.no_grad():
                    alone.spline_weight.mul_(keep.unsqueeze(-1))
                    alone.base_weight.mul_(keep)
                    inputs = torch.rand(50, layer.in_features)
                    inputs[:, i] = torch.as_tensor(s.inputs[:, i])
                    direct = alone(inputs)[:, j]
                np.testing.assert_allclose(s.values[:, i, j], direct.numpy(), rtol=0, atol=1e-13)


def test_importance_scores_a_zeroed_edge_zero_and_is_json():
    model, x = field_model(), points()
    zero_edge(model.net, 0, 1, 2)
    scores = edges.importance(model, x)
    json.dumps(scores)  # plain lists and floats
    assert scores["edges"][0][1][2] == 0.0 and scores["raw"][0][1][2] == 0.0
    assert all(max(max(row) for row in layer) == 1.0 for layer in scores["edges"])  # normalised per layer
    assert [len(v) for v in scores["nodes"]] == [2, 3, 2]
    # Hidden node 2: incoming max over edges 0->2 and 1->2, outgoing max over 2->0 and 2->1.
    e0, e1 = np.asarray(scores["edges"][0]), np.asarray(scores["edges"][1])
    assert scores["nodes"][1][2] == min(e0[:, 2].max(), e1[2, :].max())


def test_pruning_a_zero_edge_changes_nothing_and_is_reported():
    model, x = field_model(), points()
    zero_edge(model.net, 0, 1, 2)
    before = model(x).detach()
    pruned = edges.prune(model, x, threshold=1e-9)
    assert pruned.edges == [(0, 1, 2)] and pruned.nodes == []
    assert not pruned.masks[0][2, 1] and pruned.masks[0].sum() == 5 and pruned.masks[1].all()
    assert torch.equal(model(x).detach(), before)


def test_a_node_without_outgoing_edges_is_pruned_with_its_incoming_edges():
    model, x = field_model(widths=(2, 3, 1)), points()
    zero_edge(model.net, 1, 0, 0)  # hidden node 0 feeds nothing
    before = model(x).detach()
    pruned = edges.prune(model, x, threshold=1e-9)
    assert pruned.nodes == [(1, 0)]
    assert pruned.edges == [(0, 0, 0), (0, 1, 0), (1, 0, 0)]
    assert model.net.layers[0].spline_weight[0].abs().max() == 0 and model.net.layers[0].base_weight[0].abs().max() == 0
    assert torch.equal(model(x).detach(), before)


def test_a_node_without_incoming_edges_is_pruned_with_its_outgoing_edges():
    model, x = field_model(widths=(2, 3, 1)), points()
    zero_edge(model.net, 0, 0, 1)
    zero_edge(model.net, 0, 1, 1)  # hidden node 1 is constant: tanh(0) = 0
    second = model.net.layers[1]
    offset = edges.edge_values(second, torch.zeros(1, 3))[0, 1, 0].detach()  # what its outgoing edge adds
    before = model(x).detach()
    pruned = edges.prune(model, x, threshold=1e-9)
    assert pruned.nodes == [(1, 1)] and pruned.edges == [(0, 0, 1), (0, 1, 1), (1, 1, 0)]
    assert second.spline_weight[0, 1].abs().max() == 0 and second.base_weight[0, 1] == 0
    torch.testing.assert_close(model(x).detach(), before - offset, rtol=0, atol=1e-14)  # the constant is lost


def test_refit_enforces_the_masks():
    model, x = field_model(widths=(2, 3, 1)), points(100)
    masks = [torch.ones(3, 2, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool)]
    masks[1][0, 2] = False  # not zeroed yet: refit's first step does it
    edges.refit(model, lambda: (model(x) ** 2).mean(), steps=1, lr=1e-3, masks=masks)
    assert model.net.layers[1].spline_weight[0, 2].abs().max() == 0 and model.net.layers[1].base_weight[0, 2] == 0


def test_refit_keeps_pruned_edges_at_zero():
    model, x = field_model(widths=(2, 3, 1)), points(100)
    zero_edge(model.net, 1, 0, 0)
    pruned = edges.prune(model, x, threshold=1e-9)
    first = model.net.layers[0]
    kept_before = first.spline_weight[1].detach().clone()
    target = torch.sin(x[:, :1])
    losses = edges.refit(model, lambda: ((model(x) - target) ** 2).mean(), steps=5, lr=1e-2, masks=pruned.masks)
    assert len(losses) == 5 and losses[-1] < losses[0]
    assert first.spline_weight[0].abs().max() == 0 and first.base_weight[0].abs().max() == 0
    assert model.net.layers[1].spline_weight[0, 0].abs().max() == 0
    assert not torch.equal(first.spline_weight[1], kept_before)  # the kept edges did train


def test_a_pruned_edge_stays_zero_through_plain_training_and_jets():
    """The layer's edge_mask holds the pruning: an ordinary optimiser (no apply_masks after its steps) with
    weight decay leaves the edge at zero, the jets agree with the forward pass, and a state dict carries
    the mask into a freshly built network."""
    model, x = field_model(widths=(2, 3, 1)), points(100)
    zero_edge(model.net, 0, 1, 2)
    before = model(x).detach()
    edges.prune(model, x, threshold=1e-9)
    assert torch.equal(model(x).detach(), before)  # pruning a zero edge changes nothing
    first = model.net.layers[0]
    with torch.no_grad():  # a non-zero parameter under the mask: the mask, not the value, keeps it out
        first.spline_weight[2, 1] = 1.0
        first.base_weight[2, 1] = 1.0
    assert torch.equal(model(x).detach(), before)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    for _ in range(5):
        optimiser.zero_grad()
        ((model(x) - torch.sin(x[:, :1])) ** 2).mean().backward()
        optimiser.step()
    assert edges.importance(model, x)["raw"][0][1][2] == 0.0
    jet = model.jet(x.detach(), "diag")  # values and gradients carried forward, through the masked layer
    xg = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(xg).sum(), xg)
    torch.testing.assert_close(jet.v.detach(), model(x).detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(jet.g.detach()[:, 0, :], grad, rtol=0, atol=1e-12)
    fresh = field_model(widths=(2, 3, 1))
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(fresh.net.layers[0].edge_mask, first.edge_mask)
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


def test_plot_edges_draws_a_panel_per_edge(tmp_path, monkeypatch):
    import kinn.run.figures

    axes, save = [], kinn.run.figures.save
    monkeypatch.setattr(kinn.run.figures, "save", lambda fig, path: (axes.append(len(fig.axes)), save(fig, path)))
    model, x = field_model(widths=(2, 3, 1)), points(100)
    path = tmp_path / "figures" / "edges.png"
    edges.plot_edges(model, x, path)
    assert axes == [2 * 3 + 3 * 1]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [f.name for f in path.parent.iterdir()] == ["edges.png"]  # the temporary file was renamed
