"""Reference data from any common file, to score a finished run against a solution computed elsewhere.

`read_reference(path, fields, coords)` reads the nodes and field values by the file's suffix:

- `.h5`, `.hdf5`: the kinn layouts `grid` and `points` (data/README.md), read by `kinn.data.reference.Reference`;
- `.npz`, `.mat`: named arrays, by the conventions of `read_reference`'s docstring;
- the mesh files meshio reads (`.vtu`, `.vtk`, `.msh`, `.xdmf`, ...): the mesh points and `point_data`.

`interpolate(ref, x)` gives the values at any points inside the data: exact at the data's own nodes, linear
in between (on the tensor grid when the data came as one, else over a Delaunay triangulation). Every
mistake in a file is a one-line `KinnError` saying what was found and what is accepted.
"""
from __future__ import annotations

import contextlib
import io
import zipfile
from dataclasses import dataclass
from itertools import permutations
from pathlib import Path

import numpy as np

from kinn.errors import KinnError

HDF5_SUFFIXES = (".h5", ".hdf5")
ARRAY_SUFFIXES = (".npz", ".mat")


@dataclass(frozen=True, eq=False)
class ReferenceData:
    """Reference values at nodes: `points` (N, D) and `values` (N, C), float64, column c of `values` is
    `fields[c]` and column k of `points` is `coords[k]`; `source` says where they came from. `axes` holds
    the 1-D axes (increasing) when the nodes are a tensor grid (then `points` is their `meshgrid(...,
    indexing="ij")` raveled in C order), else None."""

    points: np.ndarray
    values: np.ndarray
    source: str
    fields: tuple[str, ...] = ()
    coords: tuple[str, ...] = ()
    axes: tuple[np.ndarray, ...] | None = None


def mesh_suffixes() -> tuple[str, ...]:
    """The suffixes meshio reads (`.vtu`, `.vtk`, `.msh`, `.xdmf`, ...), sorted."""
    import meshio

    return tuple(sorted(meshio.extension_to_filetypes))


def read_reference(path, fields, coords) -> ReferenceData:
    """Read reference values of `fields` at points with coordinates `coords` (D = len(coords)).

    By suffix:
    - `.h5` / `.hdf5`: kinn's `grid` or `points` layout (data/README.md).
    - `.npz` / `.mat` (scipy.io.loadmat; v7.3 files through h5py), either
      * one array per coordinate, 1-D axes of a tensor grid: `x` (nx,), `t` (nt,) and each field of shape
        (nx, nt), axes in the order of `coords` (a field stored in another axis order, `usol` (nt, nx)
        say, is transposed when the axis lengths say so unambiguously); or scattered points: every
        coordinate (N,) and every field (N,); or
      * a `points` array (N, D) (or (D, N)) and each field (N,).
      Any vector may be stored as a column (n, 1) or a row (1, n). With D = 1 the two forms coincide.
    - any suffix meshio reads (`mesh_suffixes()`): the mesh's points (their first D columns) and
      `point_data[field]` (N,) or (N, 1).
    Raises `KinnError` for a missing file, an unknown suffix, a missing field or coordinate, shapes that do
    not fit these conventions, NaN/inf values, or too few points to interpolate (D + 1; 2 per grid axis).
    """
    path, fields, coords = Path(path), tuple(fields), tuple(coords)
    suffix, meshes = _suffix(path), mesh_suffixes()
    if suffix not in HDF5_SUFFIXES + ARRAY_SUFFIXES + meshes:
        allowed = ", ".join(HDF5_SUFFIXES + ARRAY_SUFFIXES + meshes)
        raise KinnError(f"{path}: unsupported reference file type '{suffix or path.name}'; allowed: {allowed}")
    if not path.is_file():
        raise KinnError(f"reference file not found: {path}")
    if suffix in HDF5_SUFFIXES:
        layout, nodes, values = _read_kinn_hdf5(path, fields, coords)
    elif suffix in ARRAY_SUFFIXES:
        layout, nodes, values = _from_arrays(_load_arrays(path, suffix), fields, coords, str(path))
    else:
        layout, nodes, values = _read_mesh(path, fields, coords)
    return _assemble(layout, nodes, values, fields, coords, str(path))


def interpolate(ref: ReferenceData, x) -> np.ndarray:
    """Values of `ref` at points x (M, D), shape (M, C): the stored values at the data's own nodes, linear
    interpolation elsewhere (RegularGridInterpolator on a grid, np.interp in 1-D, LinearNDInterpolator over
    a Delaunay triangulation of scattered nodes). Points outside the data's extent (grid, 1-D) or convex
    hull (scattered) raise `KinnError` with their number, one example and the extent."""
    from scipy.spatial import cKDTree

    d = ref.points.shape[1]
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1 and d == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != d:
        raise KinnError(f"{ref.source}: points to interpolate at have shape {x.shape}; expected (M, {d}) "
                        f"with columns {', '.join(ref.coords) or d}")
    out = np.empty((len(x), ref.values.shape[1]))
    if len(x) == 0:
        return out
    finite = np.isfinite(x).all(axis=1)
    dist, idx = cKDTree(ref.points).query(x[finite])
    near = dist <= 1e-12 * max(np.ptp(ref.points, axis=0).max(), 1.0)
    node = np.zeros(len(x), dtype=bool)
    node[finite] = near
    out[node] = ref.values[idx[near]]
    if not node.all():
        out[~node] = _between_nodes(ref, x[~node], len(x))
    return out


def _between_nodes(ref: ReferenceData, x: np.ndarray, total: int) -> np.ndarray:
    """Linear interpolation at points that are not nodes, after the check that all lie inside the data."""
    from scipy.interpolate import LinearNDInterpolator, RegularGridInterpolator

    if ref.axes is None and ref.points.shape[1] > 1:
        tri = _delaunay(ref)
        inside = np.isfinite(x).all(axis=1) & (tri.find_simplex(np.nan_to_num(x)) >= 0)
        _refuse_outside(ref, x, ~inside, total, "convex hull")
        return LinearNDInterpolator(tri, ref.values)(x)
    lo, hi = ref.points.min(axis=0), ref.points.max(axis=0)
    _refuse_outside(ref, x, ~np.all((x >= lo) & (x <= hi), axis=1), total, "extent")
    if ref.axes is not None:
        grid = ref.values.reshape(*(len(a) for a in ref.axes), ref.values.shape[1])
        return RegularGridInterpolator(ref.axes, grid, method="linear")(x)
    order = np.argsort(ref.points[:, 0], kind="stable")  # D = 1: np.interp on the sorted nodes
    xp, fp = ref.points[order, 0], ref.values[order]
    return np.stack([np.interp(x[:, 0], xp, fp[:, c]) for c in range(fp.shape[1])], axis=1)


def _delaunay(ref: ReferenceData):
    from scipy.spatial import Delaunay, QhullError

    try:
        return Delaunay(ref.points)
    except QhullError:
        raise KinnError(f"{ref.source}: the {len(ref.points)} reference points do not span "
                        f"{ref.points.shape[1]} dimensions (all on a line or plane?), so they cannot be "
                        "triangulated for interpolation") from None


def _refuse_outside(ref: ReferenceData, x: np.ndarray, outside: np.ndarray, total: int, where: str) -> None:
    if not outside.any():
        return
    names = ref.coords or tuple(f"x{k}" for k in range(ref.points.shape[1]))
    example = ", ".join(f"{n}={v:.6g}" for n, v in zip(names, x[np.argmax(outside)]))
    lo, hi = ref.points.min(axis=0), ref.points.max(axis=0)
    extent = ", ".join(f"{n} in [{a:.6g}, {b:.6g}]" for n, a, b in zip(names, lo, hi))
    hull = f" (interpolation needs the {where} of its {len(ref.points)} points)" if where != "extent" else ""
    raise KinnError(f"{ref.source}: {int(outside.sum())} of {total} points lie outside the reference data, "
                    f"e.g. ({example}); the data's extent: {extent}{hull}")


def _suffix(path: Path) -> str:
    """The file's type suffix, lower case; the longest known one for compound ones (`.vol.gz`)."""
    name = path.name.lower()
    known = [s for s in HDF5_SUFFIXES + ARRAY_SUFFIXES + mesh_suffixes() if name.endswith(s)]
    return max(known, key=len) if known else path.suffix.lower()


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _have(names) -> str:
    return ", ".join(sorted(names)) or "nothing"


def _require_fields(have, fields, source: str) -> None:
    missing = [n for n in fields if n not in have]
    if missing:
        raise KinnError(f"{source}: field(s) {', '.join(repr(n) for n in missing)} not in the file "
                        f"(it has: {_have(have)})")


def _read_kinn_hdf5(path: Path, fields, coords):
    """A kinn `grid` or `points` HDF5 file, through `kinn.data.reference.Reference` (which checks the layout)."""
    import h5py

    from kinn.data.reference import Reference

    try:
        with h5py.File(path, "r") as f:
            have = list(f["fields"]) if "fields" in f else []
    except OSError as e:
        raise KinnError(f"{path}: not a readable HDF5 file ({_one_line(e)})") from None
    if have:  # without a `fields` group Reference names the missing group
        _require_fields(have, fields, f"{path} (fields/)")
    ref = Reference(path, fields, coords)
    if ref.layout == "grid":
        return "grid", list(ref.axes), ref.values
    return "points", ref.points, ref.values


def _load_arrays(path: Path, suffix: str) -> dict:
    """The named arrays of a .npz or .mat file (MATLAB v7.3 files, which are HDF5, through h5py)."""
    try:
        if suffix == ".npz":
            if not zipfile.is_zipfile(path):  # np.load would take it for a pickle and say so
                raise KinnError(f"{path}: not a readable .npz file (not a zip archive as numpy.savez writes)")
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        from scipy.io import loadmat

        try:
            return {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
        except NotImplementedError:  # v7.3
            return _load_mat73(path)
    except KinnError:
        raise
    except Exception as e:  # whatever the parsers raise for a damaged file
        raise KinnError(f"{path}: not a readable {suffix} file ({_one_line(e)})") from None


def _load_mat73(path: Path) -> dict:
    import h5py

    with h5py.File(path, "r") as f:
        # HDF5 keeps MATLAB's column-major arrays with their axes reversed: .T restores MATLAB's shape.
        return {k: np.asarray(v).T for k, v in f.items() if isinstance(v, h5py.Dataset) and k[0] != "#"}


def _from_arrays(arrays: dict, fields, coords, source: str):
    """Named arrays (npz, mat) to (layout, nodes, {field: values}) by read_reference's conventions."""
    _require_fields(arrays, fields, source)
    d = len(coords)
    if all(c in arrays for c in coords):
        axes = [_vector(arrays[c], f"coordinate '{c}'", source) for c in coords]
        lengths = tuple(len(a) for a in axes)
        shaped = {n: _field_layout(arrays[n], n, lengths, coords, source) for n in fields}
        kinds = {kind for kind, _ in shaped.values()}
        if len(kinds) > 1:
            raise KinnError(f"{source}: fields {', '.join(fields)} mix grid-shaped {lengths} and scattered "
                            f"({lengths[0]},) arrays; store all of them one way")
        kind, values = kinds.pop(), {n: v for n, (_, v) in shaped.items()}
        return kind, (axes if kind == "grid" else np.stack(axes, axis=1)), values
    if "points" in arrays:
        points = _float(arrays["points"], "'points'", source)
        if d == 1 and points.ndim == 1:
            points = points[:, None]
        if points.ndim == 2 and points.shape[1] != d and points.shape[0] == d:
            points = points.T
        if points.ndim != 2 or points.shape[1] != d:
            raise KinnError(f"{source}: 'points' has shape {points.shape}; expected (N, {d}) with columns "
                            f"{', '.join(coords)}")
        return "points", points, {n: _vector(arrays[n], f"field '{n}'", source, len(points)) for n in fields}
    missing = ", ".join(repr(c) for c in coords if c not in arrays)
    raise KinnError(f"{source}: coordinate(s) {missing} not in the file (it has: {_have(arrays)}); expected one "
                    f"array per coordinate ({', '.join(coords)}) or a 'points' array (N, {d})")


def _vector(a, what: str, source: str, length: int | None = None) -> np.ndarray:
    """A 1-D float64 array from (n,), (n, 1) or (1, n), of `length` values when given."""
    a = _float(a, what, source)
    if a.ndim == 2 and 1 in a.shape:
        a = a.ravel()
    if a.ndim != 1:
        raise KinnError(f"{source}: {what} has shape {a.shape}; expected a vector (n,), (n, 1) or (1, n)")
    if length is not None and len(a) != length:
        raise KinnError(f"{source}: {what} has {len(a)} values; expected {length}, one per point")
    return a


def _float(a, what: str, source: str) -> np.ndarray:
    a = np.asarray(a)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise KinnError(f"{source}: {what} holds {a.dtype} values; expected real numbers")
    return a.astype(np.float64)


def _field_layout(a, name: str, lengths: tuple[int, ...], coords, source: str):
    """("grid", array with axes in coords order) or ("points", (N,) array) for a field, by its shape."""
    a = _float(a, f"field '{name}'", source)
    d = len(lengths)
    if d > 1:
        order = _axis_order(a.shape, lengths, name, coords, source)
        if order is not None:
            return "grid", np.transpose(a, order)
    scattered = len(set(lengths)) == 1
    if scattered and a.size == lengths[0] and (a.ndim == 1 or (a.ndim == 2 and 1 in a.shape)):
        return "points", a.ravel()
    also = f", or ({lengths[0]},) at scattered points" if scattered and d > 1 else ""
    grid = f"{lengths} on the grid of {', '.join(coords)} (or that grid transposed)" if d > 1 else f"({lengths[0]},)"
    raise KinnError(f"{source}: field '{name}' has shape {a.shape}; expected {grid}{also}")


def _axis_order(shape, lengths, name: str, coords, source: str):
    """The axis permutation that puts an array of `shape` into the coordinates' order `lengths`: the
    identity when it already is, the one permutation that fits, or None when none fits."""
    if tuple(shape) == tuple(lengths):
        return tuple(range(len(lengths)))
    if len(shape) != len(lengths):
        return None
    fits = {p for p in permutations(range(len(lengths))) if tuple(lengths[i] for i in p) == tuple(shape)}
    if len(fits) > 1:
        raise KinnError(f"{source}: field '{name}' has shape {tuple(shape)}, a transpose of the grid {lengths} "
                        f"of {', '.join(coords)} with more than one axis order; store it as {lengths}")
    return tuple(np.argsort(fits.pop())) if fits else None


def _read_mesh(path: Path, fields, coords):
    """A mesh file's points (first D columns) and point_data, through meshio."""
    import meshio

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            mesh = meshio.read(path)
    except Exception as e:  # meshio raises ReadError and whatever its parsers raise
        raise KinnError(f"{path}: meshio cannot read it ({_one_line(e)})") from None
    except SystemExit:  # meshio 5.3 prints and calls sys.exit(1) when no reader for the suffix succeeds
        kinds = ", ".join(meshio.extension_to_filetypes[_suffix(path)])
        raise KinnError(f"{path}: meshio cannot read it as {kinds}") from None
    d, points = len(coords), np.asarray(mesh.points, dtype=np.float64)
    if points.shape[1] < d:
        raise KinnError(f"{path}: the mesh points have {points.shape[1]} coordinates; expected at least {d} "
                        f"({', '.join(coords)})")
    _require_fields(mesh.point_data, fields, f"{path} (point_data)")
    values = {n: _vector(mesh.point_data[n], f"point_data '{n}'", str(path), len(points)) for n in fields}
    return "points", points[:, :d], values


def _assemble(layout: str, nodes, values: dict, fields, coords, source: str) -> ReferenceData:
    """ReferenceData from a grid (axes, arrays in axis order) or points ((N, D), (N,) arrays), checked:
    finite values, at least D + 1 points (2 per grid axis), grid axes strictly monotone (made increasing)."""
    d, axes = len(coords), None
    if layout == "grid":
        axes, values = _increasing_axes(nodes, values, coords, source)
        points = np.stack([m.ravel() for m in np.meshgrid(*axes, indexing="ij")], axis=1)
    else:
        points = np.asarray(nodes, dtype=np.float64)
    vals = np.stack([np.asarray(values[n], dtype=np.float64).ravel() for n in fields], axis=1)
    for what, array in [(f"field '{n}'", vals[:, k]) for k, n in enumerate(fields)] + [("the points", points)]:
        bad = int(np.count_nonzero(~np.isfinite(array)))
        if bad:
            raise KinnError(f"{source}: {what} has {bad} NaN/inf value(s) of {array.size}; all must be finite")
    if len(points) < d + 1:
        raise KinnError(f"{source}: {len(points)} point(s); at least {d + 1} are needed to interpolate "
                        f"in {d} dimension(s)")
    return ReferenceData(points, vals, source, fields, coords, None if axes is None else tuple(axes))


def _increasing_axes(axes, values: dict, coords, source: str):
    """Grid axes made strictly increasing (a decreasing axis, Chebyshev points say, is flipped together
    with the fields); an axis of fewer than 2 points or not monotone is refused."""
    axes, values = [np.asarray(a, dtype=np.float64) for a in axes], dict(values)
    for k, (name, a) in enumerate(zip(coords, axes)):
        if len(a) < 2:
            raise KinnError(f"{source}: grid axis '{name}' has {len(a)} point(s); at least 2 are needed")
        step = np.diff(a)
        if np.all(step < 0):
            axes[k] = a[::-1]
            values = {n: np.flip(v, axis=k) for n, v in values.items()}
        elif not np.all(step > 0):
            raise KinnError(f"{source}: grid axis '{name}' is not strictly monotone; a grid's axes must be, "
                            "or store the nodes as scattered points")
    return axes, values
