"""Operator learning: a grid family (FNO) trained on a dataset of input and output functions.

`kinn.solve(problem, "fno")` comes here when the form is an `OperatorForm`. The dataset (HDF5,
`kinn.datasets`) is read once; training uses its train split at every `points.stride`-th node, in
shuffled batches of `train.batch_size` samples, through the same `kinn.trainer.fit` as every other run.
The test split scores the model at the training resolution ("rel_l2/u", evaluated during training) and,
at the end, at the dataset's full resolution ("rel_l2@129x129/u"): a neural operator is meant to work on
grids it was not trained on. Errors are the mean over test samples of the per-sample relative L2 error.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import io, plots
from .errors import KinnError
from .grid import GridBackend, coordinate_channels, nodes, spacing


class OperatorModel(nn.Module):
    """A grid network with the dataset's normalisation and coordinate channels: inputs (B, C_in, *grid)
    in physical units -> outputs (B, C_out, *grid). Works on any resolution of the same domain.

    Inputs are standardised per channel with the training set's mean and standard deviation, the node
    coordinates scaled to [-1, 1] are appended as channels, and the outputs are rescaled the same way.
    """

    grid = True

    def __init__(self, net: nn.Module, lo, hi, n_in: int, n_out: int, periodic=()):
        super().__init__()
        self.net = net
        d = len(lo)
        self.register_buffer("lo", torch.as_tensor(np.asarray(lo, float)))
        self.register_buffer("hi", torch.as_tensor(np.asarray(hi, float)))
        self.register_buffer("periodic_axes", torch.as_tensor(list(periodic) or [False] * d, dtype=torch.bool))
        for name, n, value in (("in_mean", n_in, 0.0), ("in_std", n_in, 1.0), ("out_mean", n_out, 0.0),
                               ("out_std", n_out, 1.0)):
            self.register_buffer(name, torch.full((n,), value, dtype=torch.float64))

    @property
    def periodic(self) -> tuple[bool, ...]:
        return tuple(bool(p) for p in self.periodic_axes)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.lo.cpu().numpy(), self.hi.cpu().numpy()

    def normalise(self, inputs: np.ndarray, outputs: np.ndarray) -> None:
        """Set the standardisation from training data (S, C, *grid)."""
        for name, data in (("in", inputs), ("out", outputs)):
            axes = (0, *range(2, data.ndim))
            getattr(self, f"{name}_mean").copy_(torch.as_tensor(data.mean(axes, dtype=np.float64)))
            getattr(self, f"{name}_std").copy_(torch.as_tensor(data.std(axes, dtype=np.float64)).clamp_min(1e-12))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        batch, _, *shape = inputs.shape
        view = (1, -1) + (1,) * len(shape)
        z = (inputs - self.in_mean.view(view)) / self.in_std.view(view)
        coords = coordinate_channels(*self.bounds(), shape, inputs.dtype, inputs.device, batch, self.periodic)
        return self.net(torch.cat([z, coords], 1)) * self.out_std.view(view) + self.out_mean.view(view)

    def backend(self, values: torch.Tensor, shape, batch: int) -> GridBackend:
        """The grid backend for values (B * prod(shape), C) on `batch` grids of `shape`."""
        return GridBackend(values, shape, spacing(*self.bounds(), shape, self.periodic), self.periodic, batch)


def build(problem, family, cfg, device, dtype) -> OperatorModel:
    """The operator model for a problem's `OperatorForm` (normalisation still to be set or loaded)."""
    from . import geometry

    form = problem.form("operator")
    options = family.config(cfg.model)
    family.check(problem, "operator", options)
    d = problem.n_space
    net = family.build(len(form.inputs) + d, len(problem.fields), options, dim=d)
    if not getattr(net, "grid", False):
        raise KinnError(f"solver '{family.name}' is not a grid family; the operator form needs one (fno)")
    lo, hi = geometry.bbox(problem.domain)
    return OperatorModel(net, lo, hi, len(form.inputs), len(problem.fields)).to(device=device, dtype=dtype)


def dataset(problem):
    """The problem's dataset, generated first when missing and the form can make it; checked against the
    problem (input and output names, axes, domain)."""
    from .datasets import read_dataset
    from .reference import resolve

    form = problem.form("operator")
    path = resolve(form.data)
    if not path.exists() and form.make is not None:
        print(f"kinn: {path} not found: generating it with {form.make.__module__}.{form.make.__name__} "
              "(once; see data/README.md)", file=sys.stderr)
        t = time.perf_counter()
        form.make(path)
        print(f"kinn: {path} written in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    ds = read_dataset(path)
    where = f"dataset {path}"
    if tuple(ds.input_names) != tuple(form.inputs):
        raise KinnError(f"{where} has inputs {', '.join(ds.input_names)}; problem '{problem.name}' expects "
                        f"{', '.join(form.inputs)}")
    if tuple(ds.output_names) != tuple(problem.fields):
        raise KinnError(f"{where} has outputs {', '.join(ds.output_names)}; problem '{problem.name}' expects "
                        f"{', '.join(problem.fields)}")
    if tuple(ds.axes) != tuple(problem.coords):
        raise KinnError(f"{where} has axes {', '.join(ds.axes)}; problem '{problem.name}' has coordinates "
                        f"{', '.join(problem.coords)}")
    from . import geometry

    lo, hi = geometry.bbox(problem.domain)
    periodic = [name in ds.periodic for name in ds.axes]
    expect = nodes(lo, hi, ds.shape, periodic)
    got = np.stack(np.meshgrid(*ds.axes.values(), indexing="ij"), -1).reshape(-1, len(lo))
    if not np.allclose(got, expect, atol=1e-9 * float(np.max(hi - lo))):
        raise KinnError(f"{where}: its grid is not the regular grid of problem '{problem.name}' on "
                        f"{list(lo)} .. {list(hi)} (periodic axes: {', '.join(ds.periodic) or 'none'})")
    return ds


def _errors(model, inputs, outputs, names, tag: str = "", chunk: int = 50) -> dict[str, float]:
    """Mean per-sample relative L2 and max abs error per output channel, on numpy data (S, C, *grid)."""
    p = next(model.parameters())
    rel, worst = [], np.zeros(len(names))
    with torch.no_grad():
        for a, y in zip(np.array_split(inputs, max(1, len(inputs) // chunk)),
                        np.array_split(outputs, max(1, len(inputs) // chunk))):
            pred = model(torch.as_tensor(a, dtype=p.dtype, device=p.device)).double().cpu().numpy()
            diff = (pred - y).reshape(len(y), len(names), -1)
            rel.append(np.linalg.norm(diff, axis=2) / np.linalg.norm(y.reshape(diff.shape), axis=2))
            worst = np.maximum(worst, np.abs(diff).max(axis=(0, 2)))
    rel = np.concatenate(rel).mean(0)
    out = {}
    for k, name in enumerate(names):
        out[f"rel_l2{tag}/{name}"] = float(rel[k])
        out[f"max{tag}/{name}"] = float(worst[k])
    return out


def solve(problem, family, cfg, *, device, dtype, group, run_dir: Path | None, start: dict | None):
    """Train and score an operator run (called by `kinn.solve`); returns the `Result`."""
    from .api import Result, checkpointer, term_weights
    from .trainer import fit

    tc, form = cfg.train, problem.form("operator")
    if group.world > 1:
        raise KinnError("operator runs are not data-parallel yet: run them without torchrun")
    if tc.lbfgs and tc.batch_size:
        raise KinnError("train.lbfgs needs full batches in an operator run: set train.batch_size = 0 or lbfgs = 0")
    full = dataset(problem)
    try:
        ds = full.subsample(cfg.points.stride)
    except KinnError as e:
        raise KinnError(f"points.stride = {cfg.points.stride} does not fit the dataset's grid: {e}") from None
    (a_train, u_train), (a_test, u_test) = ds.split("train"), ds.split("test")
    model = build(problem, family, cfg, device, dtype)
    model.normalise(a_train, u_train)
    if start is not None:
        model.load_state_dict(start["model"])

    n, bs = len(a_train), min(tc.batch_size or len(a_train), len(a_train))
    per_epoch = -(-n // bs)
    a_t = torch.as_tensor(a_train, dtype=dtype, device=device)
    u_t = torch.as_tensor(u_train, dtype=dtype, device=device)
    # batch k is a pure function of k, so a resumed run sees the same batches; the trainer calls
    # next_batch() before every step but the first, and before the first step of a resumed run
    cursor = [max(start["trainer"]["adam_steps"] - 1, 0) if start else 0]

    def batch() -> dict[str, torch.Tensor]:
        epoch, j = divmod(cursor[0], per_epoch)
        gen = torch.Generator().manual_seed(_seed(tc.seed, epoch))
        idx = torch.randperm(n, generator=gen)[j * bs: (j + 1) * bs].to(device)
        return {"inputs": a_t[idx], "outputs": u_t[idx]}

    current = batch()

    def next_batch():  # called by the trainer before every Adam step after the first
        cursor[0] += 1
        current.update(batch())

    weights = term_weights(form, tc)
    physics = weights.get("pde", 0.0) > 0
    names = problem.fields

    def score():
        return _errors(model, a_test, u_test, names)

    t0 = time.perf_counter()
    history = fit(model, lambda: form.loss(model, problem, current, physics), score,
                  dataclasses.replace(tc, resample_every=1), weights=weights, resample=next_batch,
                  checkpoint=checkpointer(run_dir, model, cursor), resume=start["trainer"] if start else None,
                  group=group)
    wall = time.perf_counter() - t0
    model.eval()
    errors = score()
    if cfg.points.stride > 1:  # the same test samples on the dataset's own, finer grid
        errors.update(_errors(model, *full.split("test"), names, f"@{'x'.join(map(str, full.shape))}"))
    result = Result(problem, family, cfg, model, history, errors, None, run_dir, wall)
    if run_dir is not None:
        _write(result, full)
    return result


def _seed(seed: int, epoch: int) -> int:
    from .api import seed_stream

    return seed_stream(seed, "batches", epoch) % 2**63


def _write(result, full, count: int = 16) -> None:
    """history, a few test samples with predictions at full resolution (HDF5 and a figure), result.json."""
    import h5py

    run_dir, model = result.run_dir, result.model
    a, u = (v[:count] for v in full.split("test"))
    p = next(model.parameters())
    with torch.no_grad():
        pred = model(torch.as_tensor(a, dtype=p.dtype, device=p.device)).double().cpu().numpy()

    def h5(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["description"] = f"first {len(a)} test samples at the dataset's resolution, with predictions"
            for name, values in full.axes.items():
                f.create_dataset(f"grid/{name}", data=values)
            f.create_dataset("inputs", data=a)
            f.create_dataset("outputs", data=u)
            f.create_dataset("predictions", data=pred)

    io.write_json(run_dir / "history.json", dataclasses.asdict(result.history))
    io.atomic_write(run_dir / "predictions.h5", h5)
    plots.operator_samples(run_dir / "figures" / "samples.png", a, u, pred, full.input_names, full.output_names,
                           list(full.axes.values()))
    if result.history.rows:
        plots.history(run_dir / "figures" / "history.png", result.history.rows)
    io.write_json(run_dir / "result.json", result.summary())
