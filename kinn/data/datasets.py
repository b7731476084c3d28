"""Operator datasets: input/output field pairs on a shared grid, for the operator-learning (FNO) family.

One HDF5 file per dataset (also documented in data/README.md, "Operator datasets"):

    root attributes
        format        "kinn-operator-dataset"
        version       1
        description, equation, method, created_by     str (what, which PDE, how made, the command)
        input_names   comma-separated channel names of `inputs`, e.g. "a"
        output_names  comma-separated channel names of `outputs`, e.g. "u"
        axes          comma-separated axis names in array order, e.g. "x,y"
        periodic      comma-separated names of the periodic axes, "" if none
        ...           every generator parameter (n, seed, nu, ...) as a scalar or string
    inputs          (S, C_in, N_1, ..., N_d)    float
    outputs         (S, C_out, N_1, ..., N_d)   float
    grid/<axis>     (N_k,) node coordinates of each axis, increasing
    split/train     int sample indices, non-empty
    split/test      int sample indices, disjoint from train

`inputs[s, c, i, j]` is input channel c of sample s at (grid/x[i], grid/y[j]). A periodic axis holds its
nodes without the repeated end point (x_j = j / N on [0, 1)). Arrays keep the dtype they were written with
(the generated datasets are float32); `read_dataset` checks everything above and raises one KinnError naming
the file and the wrong item.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from kinn.errors import KinnError, unknown
from kinn.run.rundir import atomic_write
from kinn.data.reference import resolve

FORMAT = "kinn-operator-dataset"
VERSION = 1
LAYOUT_HINT = "see data/README.md, 'Operator datasets', for the layout"
_RESERVED = ("format", "version", "input_names", "output_names", "axes", "periodic")
_REQUIRED_TEXT = ("description", "equation", "method", "created_by")


@dataclass
class OperatorDataset:
    """An operator dataset in memory: `inputs` (S, C_in, *shape), `outputs` (S, C_out, *shape) on `axes`."""

    inputs: np.ndarray
    outputs: np.ndarray
    axes: dict[str, np.ndarray]
    train: np.ndarray
    test: np.ndarray
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    periodic: tuple[str, ...] = ()
    attrs: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def dim(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid shape (N_1, ..., N_d)."""
        return tuple(len(v) for v in self.axes.values())

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, outputs) of the "train" or "test" samples."""
        if name not in ("train", "test"):
            raise unknown("split", name, ("train", "test"))
        idx = self.train if name == "train" else self.test
        return self.inputs[idx], self.outputs[idx]

    def subsample(self, stride: int) -> OperatorDataset:
        """Every `stride`-th node along each axis (the same nodes, a coarser grid; stride 1 is a copy).

        A non-periodic node grid must keep both end points, (N - 1) % stride == 0; a periodic one must stay
        uniform around the period, N % stride == 0.
        """
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise KinnError(f"subsample: stride must be a positive integer, got {stride!r}")
        for name, nodes in self.axes.items():
            n = len(nodes)
            if name in self.periodic and n % stride:
                raise KinnError(f"subsample: periodic axis '{name}' has {n} nodes, not a multiple of stride {stride}")
            if name not in self.periodic and (n - 1) % stride:
                raise KinnError(f"subsample: axis '{name}' has {n} nodes; stride {stride} needs (N - 1) % stride == 0 "
                                f"to keep both end points (N = {stride}m + 1)")
        cut = (slice(None), slice(None)) + (slice(None, None, stride),) * self.dim
        return replace(self, inputs=np.ascontiguousarray(self.inputs[cut]),
                       outputs=np.ascontiguousarray(self.outputs[cut]),
                       axes={k: v[::stride].copy() for k, v in self.axes.items()},
                       attrs={**self.attrs, "subsample_stride": int(stride) * int(self.attrs.get("subsample_stride", 1))})


def write_dataset(path, inputs, outputs, axes, train, test, input_names, output_names, periodic=(), **attrs) -> Path:
    """Check and write an operator dataset (layout: module docstring) atomically; returns the path.

    `axes` maps axis names to node coordinates, in array order. `attrs` must include description, equation,
    method and created_by; any other scalars or strings (generator parameters) are stored as they are.
    Arrays keep their dtype (cast to float32 first to halve the file); datasets are gzip-compressed, one
    chunk per sample.
    """
    import h5py

    path = Path(path)
    name = path.name
    inputs, outputs = np.asarray(inputs), np.asarray(outputs)
    axes = {str(k): np.asarray(v) for k, v in dict(axes).items()}
    train, test = np.asarray(train), np.asarray(test)
    input_names, output_names, periodic = tuple(input_names), tuple(output_names), tuple(periodic)
    clash = [k for k in attrs if k in _RESERVED]
    if clash:
        raise KinnError(f"{name}: attribute(s) {', '.join(clash)} are set by write_dataset itself")
    missing = [k for k in _REQUIRED_TEXT if not isinstance(attrs.get(k), str) or not attrs[k]]
    if missing:
        raise KinnError(f"{name}: write_dataset needs the text attribute(s) {', '.join(missing)}")
    for key, list_ in (("input_names", input_names), ("output_names", output_names), ("axes", tuple(axes)),
                       ("periodic", periodic)):
        bad = [s for s in list_ if not isinstance(s, str) or not s or "," in s or s != s.strip()]
        if bad:
            raise KinnError(f"{name}: {key} must be non-empty names without commas or spaces at the ends, got {bad}")
    odd = {k: type(v).__name__ for k, v in attrs.items() if not isinstance(v, (str, bool, int, float, np.number))}
    if odd:
        raise KinnError(f"{name}: attributes must be strings or numbers, got {odd}")
    _check(name, inputs, outputs, axes, train, test, input_names, output_names, periodic)

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs.update(format=FORMAT, version=VERSION, input_names=",".join(input_names),
                           output_names=",".join(output_names), axes=",".join(axes), periodic=",".join(periodic))
            for k, v in attrs.items():
                f.attrs[k] = v
            for key, arr in (("inputs", inputs), ("outputs", outputs)):
                f.create_dataset(key, data=arr, chunks=(1,) + arr.shape[1:] if arr.size else None,
                                 compression="gzip" if arr.size else None, shuffle=bool(arr.size))
            for k, v in axes.items():
                f.create_dataset(f"grid/{k}", data=v)
            f.create_dataset("split/train", data=train.astype(np.int64))
            f.create_dataset("split/test", data=test.astype(np.int64))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions

    atomic_write(path, write)
    return path


def read_dataset(path) -> OperatorDataset:
    """Read and check an operator dataset; a name that is not a path is looked up in the data folder.

    Every problem (missing file, not HDF5, wrong format, a missing or wrongly shaped item, bad split,
    non-finite values) raises a KinnError naming the file and the item.
    """
    import h5py

    path = resolve(path)
    name = path.name
    if not path.exists():
        raise KinnError(f"operator dataset not found: {path} (make it with its script in scripts/; {LAYOUT_HINT})")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise KinnError(f"{name}: not an HDF5 file ({e}); {LAYOUT_HINT}") from None
    with f:
        fmt = _text_attr(f, name, "format")
        if fmt != FORMAT:
            raise KinnError(f"{name}: root attribute 'format' is '{fmt}', expected '{FORMAT}'; {LAYOUT_HINT}")
        version = _plain(f.attrs.get("version"))
        if isinstance(version, (bool, str)) or version != VERSION:
            raise KinnError(f"{name}: root attribute 'version' is {version!r}, expected {VERSION}; {LAYOUT_HINT}")
        names = {k: _names(_text_attr(f, name, k)) for k in _RESERVED[2:]}
        axes = {}
        for ax in names["axes"]:
            axes[ax] = np.asarray(_dataset(f, name, f"grid/{ax}"))
        inputs = np.asarray(_dataset(f, name, "inputs"))
        outputs = np.asarray(_dataset(f, name, "outputs"))
        train = np.asarray(_dataset(f, name, "split/train"))
        test = np.asarray(_dataset(f, name, "split/test"))
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
    try:
        _check(name, inputs, outputs, axes, train, test, names["input_names"], names["output_names"], names["periodic"])
    except KinnError as e:
        raise KinnError(f"{e}; {LAYOUT_HINT}") from None
    return OperatorDataset(inputs=inputs, outputs=outputs, axes=axes, train=train.astype(np.int64),
                           test=test.astype(np.int64), input_names=names["input_names"],
                           output_names=names["output_names"], periodic=names["periodic"], attrs=attrs, path=path)


def _check(name, inputs, outputs, axes, train, test, input_names, output_names, periodic) -> None:
    """The layout's rules on arrays in memory; the first broken one raises a KinnError."""
    d = len(axes)
    if d == 0:
        raise KinnError(f"{name}: attribute 'axes' names no axis")
    for key, arr in (("inputs", inputs), ("outputs", outputs)):
        if arr.ndim != d + 2:
            raise KinnError(f"{name}: '{key}' has shape {arr.shape}, expected (samples, channels) + {d} grid "
                            f"dimension(s) for axes {','.join(axes)}")
        if arr.dtype.kind != "f":
            raise KinnError(f"{name}: '{key}' has dtype {arr.dtype}, expected a float type")
    if inputs.shape[0] != outputs.shape[0]:
        raise KinnError(f"{name}: 'inputs' has {inputs.shape[0]} samples but 'outputs' has {outputs.shape[0]}")
    if inputs.shape[2:] != outputs.shape[2:]:
        raise KinnError(f"{name}: 'inputs' grid shape {inputs.shape[2:]} differs from 'outputs' grid shape "
                        f"{outputs.shape[2:]}")
    for k, (ax, nodes) in enumerate(axes.items()):
        if nodes.ndim != 1 or nodes.dtype.kind not in "fiu" or len(nodes) != inputs.shape[2 + k]:
            raise KinnError(f"{name}: 'grid/{ax}' has shape {nodes.shape}, expected ({inputs.shape[2 + k]},), the "
                            f"length of grid dimension {k + 1} of 'inputs' {inputs.shape}")
        if not np.all(np.isfinite(nodes)) or np.any(np.diff(nodes) <= 0):
            raise KinnError(f"{name}: 'grid/{ax}' must be finite and strictly increasing")
    for key, labels, arr in (("input_names", input_names, inputs), ("output_names", output_names, outputs)):
        if len(labels) != arr.shape[1] or len(set(labels)) != len(labels):
            raise KinnError(f"{name}: attribute '{key}' = '{','.join(labels)}' names {len(labels)} channel(s), "
                            f"expected {arr.shape[1]} distinct names (channel dimension of {arr.shape})")
    stray = [p for p in periodic if p not in axes]
    if stray:
        raise KinnError(f"{name}: attribute 'periodic' names {','.join(stray)}, not among the axes {','.join(axes)}")
    samples = inputs.shape[0]
    for key, idx in (("split/train", train), ("split/test", test)):
        if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
            raise KinnError(f"{name}: '{key}' must be a 1-D array of integer sample indices, got {idx.dtype} {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= samples):
            raise KinnError(f"{name}: '{key}' has indices outside 0..{samples - 1} (range {idx.min()}..{idx.max()})")
        if len(np.unique(idx)) != idx.size:
            raise KinnError(f"{name}: '{key}' repeats sample indices")
    if train.size == 0:
        raise KinnError(f"{name}: 'split/train' is empty")
    both = np.intersect1d(train, test)
    if both.size:
        raise KinnError(f"{name}: 'split/train' and 'split/test' overlap in {both.size} sample(s), e.g. {both[:5].tolist()}")
    for key, arr in (("inputs", inputs), ("outputs", outputs)):
        bad = ~np.isfinite(arr)
        if bad.any():
            raise KinnError(f"{name}: '{key}' has {int(bad.sum())} non-finite value(s), first in sample "
                            f"{int(np.argwhere(bad)[0][0])}")


def _text_attr(f, name: str, key: str) -> str:
    if key not in f.attrs:
        raise KinnError(f"{name}: missing root attribute '{key}'; {LAYOUT_HINT}")
    v = _plain(f.attrs[key])
    if not isinstance(v, str):
        raise KinnError(f"{name}: root attribute '{key}' must be a string, got {v!r}")
    return v


def _dataset(f, name: str, key: str):
    import h5py

    if not isinstance(f.get(key), h5py.Dataset):
        raise KinnError(f"{name}: missing dataset '{key}'; {LAYOUT_HINT}")
    return f[key][()]


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",")) if text.strip() else ()


def _plain(v):
    """h5py attribute value -> str / Python scalar / list."""
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()]
    return v
