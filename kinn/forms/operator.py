"""`OperatorForm`: operator learning. A lattice family (FNO) learns the map from input functions to the
problem's fields on the pairs of a dataset (`kinn.data.datasets`), optionally with the PDE residual as a
physics term (PINO).

The dataset is read once; training uses its train split at every `points.stride`-th node, in shuffled
batches of `train.batch_size` samples (`Batches`). The test split scores the model at the training
resolution ("rel_l2/u", during training) and, at the end, at the dataset's full resolution
("rel_l2@129x129/u"): a neural operator is meant to work on grids it was not trained on. Errors are the
mean over test samples of the per-sample relative L2 error.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

import numpy as np
import torch

from kinn.data.datasets import OperatorDataset, read_dataset
from kinn.data.reference import resolve
from kinn.errors import KinnError
from kinn.forms.base import Data, Env, Form, Scorer, write_summary
from kinn.forms.points import columns
from kinn.metrics import relative_l2
from kinn.pde.lattice import nodes
from kinn.models.operator import OperatorModel
from kinn.pde import geometry
from kinn.pde.fields import Field
from kinn.run import figures, rundir


@dataclass(frozen=True)
class OperatorForm(Form):
    """Operator learning from a dataset of input/output functions.

    data:     the dataset, an HDF5 file in the `kinn.data.datasets` layout: a name under data/ or a path.
    inputs:   names of the input functions, the dataset's input channels in order (("a",) for Darcy).
    residual: optional `residual(u, x, **inputs)`, written with `kinn.ops` like a strong-form residual;
              the inputs arrive by name as (N, 1) tensors at the same nodes. It is evaluated by the lattice
              backend (`kinn.models.lattice`) at the nodes off the ends of the non-periodic axes. Its loss
              term "pde" has weight 0 (data only) unless `train.weights.pde` says otherwise.
    make:     optional `make(path)` that generates the dataset where the file is missing.

    The "data" term is the batch mean of the per-sample relative L2 error (as in Li et al.'s FNO), so
    it does not depend on the scale of the outputs.
    """

    data_file: str
    inputs: Sequence[str]
    residual: Callable | None = None
    make: Callable | None = None
    kind: ClassVar[str] = "operator"
    order: ClassVar[int] = 2

    def __init__(self, data: str, inputs: Sequence[str], residual: Callable | None = None,
                 make: Callable | None = None):
        for name, value in (("data_file", data), ("inputs", tuple(inputs)), ("residual", residual), ("make", make)):
            object.__setattr__(self, name, value)

    def conditions(self) -> tuple:
        return ()

    def weights(self) -> dict[str, float]:
        return {"pde": 0.0} if self.residual is not None else {}

    def build(self, problem, family, cfg) -> OperatorModel:
        """The operator model: the family's lattice network with the dataset's normalisation (set by `data`)."""
        options = family.config(cfg.model)
        family.check(problem, self.kind, options)
        if not family.lattice:
            raise KinnError(f"family '{family.name}' does not support the operator form: it maps points, and operator "
                            "learning needs a lattice family (fno)")
        d = problem.n_space
        net = family.build(len(self.inputs) + d, len(problem.fields), options, dim=d)
        lo, hi = geometry.bbox(problem.domain)
        return OperatorModel(net, lo, hi, len(self.inputs), len(problem.fields))

    def dataset(self, problem) -> OperatorDataset:
        """The problem's dataset, generated first when missing and `make` is given; checked against the
        problem (input and output names, axes, domain)."""
        path = resolve(self.data_file)
        if not path.exists() and self.make is not None:
            print(f"kinn: {path} not found: generating it with {self.make.__module__}.{self.make.__name__} "
                  "(once; see data/README.md)", file=sys.stderr)
            t = time.perf_counter()
            self.make(path)
            print(f"kinn: {path} written in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        ds = read_dataset(path)
        _check_dataset(ds, problem, self.inputs, f"dataset {path}")
        return ds

    def data(self, problem, model, cfg, env: Env, resume: dict | None = None) -> Batches:
        if env.group.world > 1:
            raise KinnError("operator runs are not data-parallel yet: run them without torchrun")
        if cfg.train.lbfgs and cfg.train.batch_size:
            raise KinnError("train.lbfgs needs full batches in an operator run: set train.batch_size = 0 or lbfgs = 0")
        return Batches(self.dataset(problem), model, cfg, env, resume)

    def residuals(self, model, problem, inputs: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """The residual of predictions pred (B, C, *grid) for inputs (B, C_in, *grid) at the interior
        nodes of every sample, (M, R)."""
        batch, channels, *shape = pred.shape
        backend = model.lattice_backend(pred.movedim(1, -1).reshape(-1, channels), shape, batch)
        u = Field(backend, problem.fields, problem.coords, problem.n_space)
        x = torch.as_tensor(nodes(*model.bounds(), shape, model.periodic), dtype=pred.dtype, device=pred.device)
        named = {name: inputs[:, k].reshape(-1, 1) for k, name in enumerate(self.inputs)}
        return columns(self.residual(u, x.repeat(batch, 1), **named))[backend.interior()]

    def loss(self, model, problem, batch: dict[str, torch.Tensor], weights: dict[str, float]) -> dict[str, torch.Tensor]:
        """{"data": mean relative L2 on the batch, "pde": mean squared residual (when its weight is > 0)}."""
        pred = model(batch["inputs"])
        terms = {"data": relative_l2(pred, batch["outputs"], axis=1).mean()}
        if self.residual is not None and weights.get("pde", 0.0) > 0:
            terms["pde"] = self.residuals(model, problem, batch["inputs"], pred).square().mean()
        return terms

    def scorer(self, problem, model, cfg, env: Env, data: Batches) -> OperatorScorer:
        return OperatorScorer(problem, model, cfg, data.full)

    def predict(self, model, problem, x, env: Env):
        raise KinnError("an operator run maps input functions on a grid, not points: call "
                        "result.model(inputs) with inputs of shape (B, C_in, N_1, ..., N_d)")


def _check_dataset(ds: OperatorDataset, problem, inputs, where: str) -> None:
    if tuple(ds.input_names) != tuple(inputs):
        raise KinnError(f"{where} has inputs {', '.join(ds.input_names)}; problem '{problem.name}' expects "
                        f"{', '.join(inputs)}")
    if tuple(ds.output_names) != tuple(problem.fields):
        raise KinnError(f"{where} has outputs {', '.join(ds.output_names)}; problem '{problem.name}' expects "
                        f"{', '.join(problem.fields)}")
    if tuple(ds.axes) != tuple(problem.coords):
        raise KinnError(f"{where} has axes {', '.join(ds.axes)}; problem '{problem.name}' has coordinates "
                        f"{', '.join(problem.coords)}")
    lo, hi = geometry.bbox(problem.domain)
    periodic = [name in ds.periodic for name in ds.axes]
    expect = nodes(lo, hi, ds.shape, periodic)
    got = np.stack(np.meshgrid(*ds.axes.values(), indexing="ij"), -1).reshape(-1, len(lo))
    if not np.allclose(got, expect, atol=1e-9 * float(np.max(hi - lo))):
        raise KinnError(f"{where}: its grid is not the regular grid of problem '{problem.name}' on "
                        f"{list(lo)} .. {list(hi)} (periodic axes: {', '.join(ds.periodic) or 'none'})")


class Batches(Data):
    """Shuffled batches of the train split at the training stride; batch k is a pure function of (seed, k),
    so a resumed run sees the same batches. Sets the model's normalisation from the train split."""

    def __init__(self, full: OperatorDataset, model, cfg, env: Env, resume: dict | None = None):
        stride = cfg.points.stride
        try:
            ds = full.subsample(stride)
        except KinnError as e:
            raise KinnError(f"points.stride = {stride} does not fit the dataset's grid: {e}") from None
        self.full, self.env = full, env
        (a_train, u_train), self.test = ds.split("train"), ds.split("test")
        model.normalise(a_train, u_train)
        self.n = len(a_train)
        self.size = min(cfg.train.batch_size or self.n, self.n)
        self.inputs, self.outputs = env.tensors({"a": a_train, "u": u_train}).values()
        # the batch of the last step the stopped run finished: its next step takes the next batch
        self.cursor = max(resume["trainer"]["adam_steps"] - 1, 0) if resume else 0
        self.batch = self._batch()

    def _batch(self) -> dict[str, torch.Tensor]:
        epoch, j = divmod(self.cursor, -(-self.n // self.size))
        gen = torch.Generator().manual_seed(geometry.seed_stream(self.env.seed, "batches", epoch) % 2**63)
        idx = torch.randperm(self.n, generator=gen)[j * self.size: (j + 1) * self.size].to(self.env.device)
        return {"inputs": self.inputs[idx], "outputs": self.outputs[idx]}

    def before_step(self, step: int) -> None:
        if step:  # the first step of a run trains on batch 0, of a resumed run on the batch it stopped in
            self.cursor += 1
            self.batch = self._batch()

    def before_chunk(self, step: int) -> None:
        pass  # L-BFGS runs on the full batch

    def hook_points(self) -> torch.Tensor:
        raise KinnError("operator runs have no points for a family's hooks")

    def state(self) -> dict:
        return {"draws": self.cursor}


def _errors(model, inputs, outputs, names, tag: str = "", chunk: int = 50) -> dict[str, float]:
    """Mean per-sample relative L2 and max abs error per output channel, on numpy data (S, C, *grid)."""
    p = next(model.parameters())
    rel, worst = [], np.zeros(len(names))
    with torch.no_grad():
        for a, y in zip(np.array_split(inputs, max(1, len(inputs) // chunk)),
                        np.array_split(outputs, max(1, len(inputs) // chunk))):
            pred = model(torch.as_tensor(a, dtype=p.dtype, device=p.device)).double().cpu().numpy()
            diff = (pred - y).reshape(len(y), len(names), -1)
            rel.append(relative_l2(pred.reshape(diff.shape), y.reshape(diff.shape), axis=2))
            worst = np.maximum(worst, np.abs(diff).max(axis=(0, 2)))
    rel = np.concatenate(rel).mean(0)
    out = {}
    for k, name in enumerate(names):
        out[f"rel_l2{tag}/{name}"] = float(rel[k])
        out[f"max{tag}/{name}"] = float(worst[k])
    return out


class OperatorScorer(Scorer):
    """Test-split errors at the training stride, and at the dataset's own resolution at the end."""

    def __init__(self, problem, model, cfg, full: OperatorDataset):
        self.problem, self.model, self.cfg, self.full = problem, model, cfg, full
        self.test = full.subsample(cfg.points.stride).split("test")

    def during(self) -> dict[str, float]:
        return _errors(self.model, *self.test, self.problem.fields)

    def final(self) -> tuple[dict[str, float], None]:
        self.model.eval()
        errors = self.during()
        if self.cfg.points.stride > 1:  # the same test samples on the dataset's own, finer grid
            full = self.full
            errors.update(_errors(self.model, *full.split("test"), self.problem.fields,
                                  f"@{'x'.join(map(str, full.shape))}"))
        return errors, None

    def write(self, result, count: int = 16) -> None:
        """A few test samples with predictions at full resolution (HDF5 and a figure), and the summary."""
        import h5py

        full, model = self.full, self.model
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

        rundir.atomic_write(result.run_dir / "predictions.h5", h5)
        figures.operator_samples(result.run_dir / "figures" / "samples.png", a, u, pred, full.input_names,
                                 full.output_names, list(full.axes.values()))
        write_summary(result)
