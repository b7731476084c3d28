"""Reference solutions stored as data (HDF5), interpolated to any points.

Layouts (documented in data/README.md):
- "grid":   `coords/<name>` 1-D axes in the order of the root attribute `coord_names`, and
            `fields/<name>` arrays on their tensor-product grid.
- "points": `points` (N, D) scattered nodes and `fields/<name>` arrays (N,).
Each file also carries `method`, `accuracy` and `created_by` attributes saying how it was made.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from kinn.errors import KinnError


def data_dir() -> Path:
    """Where references live: $KINN_DATA, else the repository's data/ folder."""
    return Path(os.environ.get("KINN_DATA", Path(__file__).resolve().parents[2] / "data"))


def resolve(name: str | os.PathLike) -> Path:
    p = Path(name)
    return p if p.is_absolute() or p.exists() else data_dir() / p


class Reference:
    """Reference fields: `ref.points` are its own nodes (N, D); `ref(x)` interpolates to points x."""

    def __init__(self, path: Path, fields: tuple[str, ...], coords: tuple[str, ...]):
        import h5py

        self.path, self.derived = path, {}  # derived/<name> datasets: the points layout may carry them
        try:
            f = h5py.File(path, "r")
        except FileNotFoundError:
            raise KinnError(f"reference data file not found: {path} (see data/README.md for how to make it)") from None
        except OSError as e:
            raise KinnError(f"reference data file {path} is not a readable HDF5 file: {e}") from None
        with f:
            self.layout = _attr(f, "layout", path)
            if "fields" not in f:
                raise KinnError(f"{path}: missing group 'fields' (fields: {', '.join(fields)})")
            missing = [n for n in fields if n not in f["fields"]]
            if missing:
                raise KinnError(f"{path}: missing field(s) {', '.join('fields/' + n for n in missing)}")
            self.values = {n: np.asarray(f["fields"][n], dtype=np.float64) for n in fields}
            bad = [n for n, v in self.values.items() if not np.isfinite(v).all()]
            if bad:  # every error against it would be NaN
                raise KinnError(f"{path}: fields/{bad[0]} holds NaN or infinite values; a reference must be finite")
            self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            if self.layout == "grid":
                names = [c.strip() for c in str(_attr(f, "coord_names", path)).split(",")]
                if tuple(names) != tuple(coords):
                    raise KinnError(f"{path}: coord_names {names} do not match the problem's coordinates {list(coords)}")
                if "coords" not in f or any(n not in f["coords"] for n in names):
                    raise KinnError(f"{path}: missing coords/<name> datasets for {', '.join(names)}")
                self.axes = [np.asarray(f["coords"][n], dtype=np.float64) for n in names]
                shape = tuple(len(a) for a in self.axes)
                for n, v in self.values.items():
                    if v.shape != shape:
                        raise KinnError(f"{path}: fields/{n} has shape {v.shape}, expected {shape} from the coords")
                mesh = np.meshgrid(*self.axes, indexing="ij")
                self.points = np.stack([m.ravel() for m in mesh], 1)
            elif self.layout == "points":
                if "points" not in f:
                    raise KinnError(f"{path}: missing dataset 'points'")
                self.derived = {n: np.asarray(v, dtype=np.float64) for n, v in f.get("derived", {}).items()}
                self.points = np.asarray(f["points"], dtype=np.float64)
                if self.points.ndim != 2 or self.points.shape[1] != len(coords):
                    raise KinnError(f"{path}: points must have shape (N, {len(coords)}), got {self.points.shape}")
                for n, v in self.values.items():
                    if v.shape != (len(self.points),):
                        raise KinnError(f"{path}: fields/{n} has shape {v.shape}, expected ({len(self.points)},)")
            else:
                raise KinnError(f"{path}: unknown layout '{self.layout}'; valid: grid, points")
        self.fields = fields
        self.node_values = np.stack([self.values[n].ravel() for n in fields], 1)

    def derived_at(self, name: str, x: np.ndarray) -> np.ndarray:
        """A derived quantity stored as `derived/<name>` (points layout: von Mises stress, say) at points x,
        linearly interpolated (exact at the nodes), shape (N,)."""
        if name not in self.derived:
            raise KinnError(f"{self.path}: no derived quantity '{name}' (has: {', '.join(self.derived) or 'none'})")
        return self._scattered(self.derived[name], x)

    def _scattered(self, values: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Node values of the points layout at x: the nodes' own values where x are nodes (evaluation sets
        are), else linear interpolation over a Delaunay triangulation (slow for large files)."""
        from scipy.interpolate import LinearNDInterpolator
        from scipy.spatial import cKDTree

        dist, idx = cKDTree(self.points).query(x)
        if np.all(dist < 1e-12):
            return values[idx]
        return LinearNDInterpolator(self.points, values)(x)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Reference values at points x (N, D), shape (N, C)."""
        if self.layout == "grid":
            from scipy.interpolate import RegularGridInterpolator
            from scipy.sparse.linalg import spsolve

            # A direct solver: scipy's default iterative one leaves ~1e-5 errors even at the nodes.
            method, kw = ("cubic", {"solver": spsolve}) if min(map(len, self.axes)) > 3 else ("linear", {})
            cols = [RegularGridInterpolator(self.axes, self.values[n], method=method, **kw)(x) for n in self.fields]
        else:
            cols = [self._scattered(self.values[n], x) for n in self.fields]
        out = np.stack(cols, 1)
        if np.isnan(out).any():
            raise KinnError(f"{self.path}: points outside the reference data's domain")
        return out


def _attr(f, name, path):
    if name not in f.attrs:
        raise KinnError(f"{path}: missing root attribute '{name}'")
    v = f.attrs[name]
    return v.decode() if isinstance(v, bytes) else v


@lru_cache(maxsize=8)
def _load(path: Path, fields, coords) -> Reference:
    return Reference(path, fields, coords)


def load_reference(name, problem) -> Reference:
    return _load(resolve(name), problem.fields, problem.coords)


def write_points(path, points, fields: dict, attrs: dict, derived: dict | None = None, triangles=None, *,
                 coords=("x", "y")) -> None:
    """Write a reference in the `points` layout (data/README.md) atomically: points (N, D), fields/<name>
    and derived/<name> (N,), mesh/triangles (M, 3) when given, and the root attributes: `layout` and
    `coord_names` (from `coords`, the points' columns) set here, then `attrs`."""
    import h5py

    from kinn.run.rundir import atomic_write

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.create_dataset("points", data=np.asarray(points, dtype=np.float64))
            for group, values in (("fields", fields), ("derived", derived or {})):
                for name, v in values.items():
                    f.create_dataset(f"{group}/{name}", data=np.asarray(v, dtype=np.float64))
            if triangles is not None:
                f.create_dataset("mesh/triangles", data=np.asarray(triangles, dtype=np.int64))
            f.attrs["layout"], f.attrs["coord_names"] = "points", ",".join(coords)
            for key, value in attrs.items():
                f.attrs[key] = value

    atomic_write(path, write)
