"""A KAN's edge functions: sampled where the data takes them, scored, plotted and pruned.

Every edge i -> j of a `kinn.solvers.kan.KANLinear` layer is the univariate function

    phi_ij(h) = w_ij silu(h) + s_ij sum_m c_ijm B_m(h)

(the base branch only where the layer has one), and the layer's output j is sum_i phi_ij(h_i). The
scores, the node rule and the pruning follow Liu et al., "KAN: Kolmogorov-Arnold Networks" (2024),
section 2.5.1; see `importance` for where they differ.

The functions accept a `KAN` or a `FieldModel` wrapping one; x are then the FieldModel's physical
points, scaled to the network's inputs as in its forward pass.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from kinn.errors import KinnError
from kinn.models.field import FieldModel
from kinn.solvers.kan import KAN, KANLinear


@dataclasses.dataclass
class EdgeSamples:
    """One layer's edge functions on a uniform grid over the range its inputs visit.

    inputs: (n, I) the grid of each input i, from lo[i] to hi[i].
    values: (n, I, O) phi_ij at inputs[:, i].
    lo, hi: (I,) the smallest and largest value input i takes for the data.
    """

    inputs: np.ndarray
    values: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@dataclasses.dataclass
class Pruned:
    """What `prune` removed: edges as (layer, i, j), hidden nodes as (node layer, node) where node layer l
    is the input of layer l (1 .. L - 1), and the masks (O, I) per layer, True where an edge is kept."""

    edges: list[tuple[int, int, int]]
    nodes: list[tuple[int, int]]
    masks: list[torch.Tensor]


def kan_of(model) -> tuple[KAN, Callable[[torch.Tensor], torch.Tensor]]:
    """The KAN inside `model` and the map from the model's inputs to the network's: `model.scale` for a
    FieldModel (whose output transform, if any, is not part of the KAN), the identity for a bare KAN."""
    if isinstance(model, KAN):
        return model, lambda x: x
    if isinstance(model, FieldModel) and isinstance(model.net, KAN):
        return model.net, model.scale
    raise KinnError(f"expected a KAN or a FieldModel wrapping one, not {type(model).__name__}")


@torch.no_grad()
def layer_inputs(model, x: torch.Tensor) -> list[torch.Tensor]:
    """What each layer of the KAN receives for the model inputs x (N, D): [(N, I_l)] for l = 0 .. L - 1,
    after the input scaling (layer 0) and after the squash between layers (the others), recorded by
    forward pre-hooks during one forward pass."""
    net, scale = kan_of(model)
    seen: list[torch.Tensor] = []
    hooks = [layer.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach())) for layer in net.layers]
    try:
        net(scale(x))
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def edge_values(layer: KANLinear, h: torch.Tensor) -> torch.Tensor:
    """phi_ij(h_i) for every edge of the layer: h (N, I) -> (N, I, O); summed over i it is layer(h)."""
    scaler, base_weight = layer.masked()  # a pruned edge is the zero function
    weight = layer.spline_weight * scaler.unsqueeze(-1)  # (O, I, M)
    phi = torch.einsum("nim,oim->nio", layer.bases(h), weight)
    if base_weight is not None:
        phi = phi + F.silu(h).unsqueeze(-1) * base_weight.T  # (N, I, 1) * (I, O)
    return phi


@torch.no_grad()
def edge_functions(model, x: torch.Tensor, n: int = 200) -> list[EdgeSamples]:
    """Every edge function of every layer, sampled at n uniform points over the range [lo, hi] that the
    layer's inputs visit for the data x (N, D) (the activations after any squash). One `EdgeSamples` per
    layer, in float64 numpy."""
    net, _ = kan_of(model)
    out = []
    for layer, h in zip(net.layers, layer_inputs(model, x)):
        lo, hi = h.amin(0), h.amax(0)  # (I,)
        levels = torch.linspace(0, 1, n, dtype=h.dtype, device=h.device).unsqueeze(-1)
        grid = lo + (hi - lo) * levels  # (n, I)
        out.append(EdgeSamples(*(t.double().cpu().numpy() for t in (grid, edge_values(layer, grid), lo, hi))))
    return out


@torch.no_grad()
def importance(model, x: torch.Tensor) -> dict:
    """Edge and node scores of the KAN for the data x (N, D), as plain lists (JSON-serialisable).

    `raw[l][i][j]`: mean over the data of |phi_ij(h_i)|, the L1 norm of an activation in Liu et al. (2024).
    `edges[l][i][j]`: raw divided by the largest raw of layer l, so each layer's strongest edge scores 1
                    (pykan's later versions normalise by activation scales instead; this rule makes one
                    threshold mean the same fraction in every layer). An edge whose function is zero
                    scores exactly 0.
    `nodes[l][k]`:  node k of node layer l (0: the inputs, L: the outputs). Incoming score = the largest
                    score among edges into it, outgoing = the largest among edges out of it; a hidden node
                    scores min(incoming, outgoing), so it clears a threshold exactly when both do (the
                    paper's rule); inputs score their outgoing, outputs their incoming.
    """
    net, _ = kan_of(model)
    raw = [edge_values(layer, h).abs().mean(0).double().cpu().numpy()
           for layer, h in zip(net.layers, layer_inputs(model, x))]  # (I, O) per layer
    edges = [r / r.max() if r.max() > 0 else r for r in raw]
    incoming = [None] + [e.max(0) for e in edges]  # per node layer 1 .. L
    outgoing = [e.max(1) for e in edges] + [None]  # per node layer 0 .. L - 1
    nodes = [o if i is None else i if o is None else np.minimum(i, o) for i, o in zip(incoming, outgoing)]
    return {"raw": [r.tolist() for r in raw], "edges": [e.tolist() for e in edges],
            "nodes": [v.tolist() for v in nodes]}


def plot_edges(model, x: torch.Tensor, path, n: int = 100) -> None:
    """One figure like pykan's `model.plot()`: a block of panels per layer (the last layer on top), panel
    (j, i) showing phi_ij over the range its input visits, its line's opacity and width growing with the
    edge's `importance` score (pruned edges are faint). Written atomically as PNG to `path`."""
    from kinn.run.figures import plt, save

    samples, scores = edge_functions(model, x, n), importance(model, x)["edges"]
    widest = max(s.values.shape[1] for s in samples)
    fig = plt.figure(figsize=(1.8 * widest + 0.6, sum(1.4 * s.values.shape[2] + 0.4 for s in samples)),
                     layout="constrained")
    blocks = fig.subfigures(len(samples), 1, squeeze=False,
                            height_ratios=[s.values.shape[2] for s in reversed(samples)])[:, 0]
    for l, (block, s) in enumerate(zip(reversed(blocks), samples)):
        _, I, O = s.values.shape
        axes = block.subplots(O, I, squeeze=False)
        block.suptitle(f"layer {l}: {I} -> {O}", fontsize=9)
        for i in range(I):
            for j in range(O):
                score = float(scores[l][i][j])
                ax = axes[O - 1 - j, i]
                ax.plot(s.inputs[:, i], s.values[:, i, j], color="k", alpha=0.1 + 0.9 * score, lw=0.4 + 1.8 * score)
                ax.set_title(f"{i}->{j}  {score:.2g}", fontsize=7)
                ax.tick_params(labelsize=5)
                ax.locator_params(nbins=3)
    save(fig, path)


@torch.no_grad()
def apply_masks(model, masks: list[torch.Tensor]) -> None:
    """Remove every edge whose mask entry (O, I) is False: each layer's `edge_mask` buffer becomes the mask
    (combined with any earlier one), which the forward pass and the jets apply, so the edge stays exactly
    zero while the network trains on; its spline coefficients and base weight are zeroed too, so grid
    refits (`extend_grid`/`update_grid`) and the checkpoint see a zero edge."""
    net, _ = kan_of(model)
    for layer, keep in zip(net.layers, masks):  # keep (O, I); the scaler stays, as grid refits divide by it
        keep = keep.to(device=layer.spline_weight.device, dtype=torch.bool)
        layer.edge_mask = keep.clone() if layer.edge_mask is None else layer.edge_mask & keep
        layer.spline_weight.mul_(keep.unsqueeze(-1).to(layer.spline_weight))
        if layer.base_weight is not None:
            layer.base_weight.mul_(keep.to(layer.base_weight))


def prune(model, x: torch.Tensor, threshold: float = 1e-2) -> Pruned:
    """Remove the edges and hidden nodes whose `importance` score is below `threshold`, in place.

    A pruned hidden node loses all its incoming and outgoing edges. Removing an edge zeroes its spline
    coefficients and base weight and masks it in the layer (`apply_masks`), so phi_ij becomes exactly 0 and
    stays 0 through further training: an edge whose function was
    already zero leaves the outputs unchanged, while a constant edge's offset is lost (these layers have
    no biases to absorb it). Inputs and outputs are never removed, only their edges. Refit afterwards with
    `refit(..., masks=pruned.masks)` (Liu et al. 2024, section 2.5.1)."""
    net, _ = kan_of(model)
    scores = importance(model, x)
    keep = [torch.as_tensor(np.asarray(e) >= threshold).T.contiguous() for e in scores["edges"]]  # (O, I)
    nodes = [(l, k) for l in range(1, len(net.layers)) for k, s in enumerate(scores["nodes"][l]) if s < threshold]
    for l, k in nodes:
        keep[l - 1][k, :] = False  # edges into the node
        keep[l][:, k] = False  # edges out of it
    apply_masks(model, keep)
    edges = sorted((l, int(i), int(j)) for l, m in enumerate(keep) for j, i in zip(*np.nonzero(~m.numpy())))
    return Pruned(edges, nodes, keep)


def refit(model, loss_fn: Callable[[], torch.Tensor], steps: int, lr: float = 1e-3,
          masks: list[torch.Tensor] | None = None) -> list[float]:
    """A brief Adam refit after pruning: `steps` steps on loss_fn() (a closure returning a scalar). Pruned
    edges stay pruned by the layers' `edge_mask`; `masks`, if given, are applied first (`apply_masks`).
    Returns the losses."""
    if masks is not None:
        apply_masks(model, masks)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses
