"""kinn.data.readers: every file format round-trips a smooth field (linear interpolation converges at order 2,
exact at the nodes), MATLAB's column/row vectors and transposed arrays, and every error message."""
import h5py
import meshio
import numpy as np
import pytest
from scipy.io import savemat
from scipy.spatial import Delaunay

from kinn.errors import KinnError
from kinn.data.readers import interpolate, read_reference
from kinn.data.reference import write_points

FIELDS, COORDS = ("u", "v"), ("x", "t")


def exact(p):
    """Two smooth fields of (x, t), shape (N, 2), columns in FIELDS order."""
    x, t = p[:, 0], p[:, 1]
    return np.stack([np.sin(2 * x + 1) * np.cos(3 * t), np.exp(0.5 * x) * (1 + t**2)], axis=1)


def grid(k):
    """x: 2k + 1 points on [-1, 1], t: k + 1 points on [0, 1] (spacing 1/k), the (N, 2) nodes and the
    fields as (nx, nt) arrays."""
    x, t = np.linspace(-1, 1, 2 * k + 1), np.linspace(0, 1, k + 1)
    pts = np.stack([m.ravel() for m in np.meshgrid(x, t, indexing="ij")], axis=1)
    u, v = (exact(pts)[:, c].reshape(len(x), len(t)) for c in range(2))
    return x, t, pts, u, v


def write_h5_grid(path, x, t, fields):
    with h5py.File(path, "w") as f:
        f.attrs["layout"], f.attrs["coord_names"] = "grid", "x,t"
        f["coords/x"], f["coords/t"] = x, t
        for name, value in fields.items():
            f[f"fields/{name}"] = value


def write_mesh(path, pts, fields):
    xyz = np.column_stack([pts, np.zeros(len(pts))])
    cells = [("triangle", Delaunay(pts).simplices)]
    # .msh as binary gmsh 2.2: meshio 5.3's gmsh 4.1 writer drops point_data, its ASCII reader fails on it
    options = {"file_format": "gmsh22", "binary": True} if path.suffix == ".msh" else {}
    meshio.write(path, meshio.Mesh(xyz, cells, point_data=fields), **options)


def write_mat73(path, arrays):
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 after a 512-byte header, arrays with reversed axes."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in arrays.items():
            f[name] = np.asarray(value).T
    header = b"MATLAB 7.3 MAT-file, written by kinn's tests".ljust(116) + bytes(8) + b"\x00\x02IM"
    with open(path, "r+b") as fh:
        fh.write(header)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


SUFFIX = {"mat73": "mat"}


def make(fmt, tmp_path, k):
    """Write the fields at resolution k in format `fmt`; return the path."""
    x, t, pts, u, v = grid(k)
    flat = dict(u=u.ravel(), v=v.ravel())
    path = tmp_path / f"{fmt}_{k}.{SUFFIX.get(fmt, fmt.split('_')[0])}"
    if fmt == "h5_grid":
        write_h5_grid(path, x, t, {"u": u, "v": v})
    elif fmt == "h5_points":
        write_points(path, pts, flat, {}, coords=COORDS)
    elif fmt == "npz_grid":
        _npz(path, x=x, t=t, u=u, v=v)
    elif fmt == "npz_decreasing":  # x from 1 down to -1, Chebyshev-style
        _npz(path, x=x[::-1], t=t, u=u[::-1], v=v[::-1])
    elif fmt == "npz_scattered":
        _npz(path, x=pts[:, 0], t=pts[:, 1], **flat)
    elif fmt == "npz_points":
        _npz(path, points=pts, **flat)
    elif fmt == "mat_transposed":  # x a column, t a row, u stored (nt, nx), v (nx, nt)
        savemat(path, {"x": x[:, None], "t": t[None, :], "u": u.T, "v": v})
    elif fmt == "mat73":
        write_mat73(path, {"x": x[:, None], "t": t[None, :], "u": u.T, "v": v})
    else:
        write_mesh(path, pts, flat)
    return path


FORMATS = ["h5_grid", "h5_points", "npz_grid", "npz_decreasing", "npz_scattered", "npz_points",
           "mat_transposed", "mat73", "vtu", "vtk", "msh", "xdmf"]
QUERY = np.random.default_rng(1).uniform([-1, 0], [1, 1], size=(400, 2))


def order_of(errors, hs):
    return np.polyfit(np.log(hs), np.log(errors), 1)[0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_converges_at_order_two(fmt, tmp_path):
    errors, ks = [], (8, 16, 32)
    for k in ks:
        ref = read_reference(make(fmt, tmp_path, k), FIELDS, COORDS)
        assert ref.points.shape == ((2 * k + 1) * (k + 1), 2) and ref.values.shape == (len(ref.points), 2)
        np.testing.assert_allclose(ref.values, exact(ref.points), atol=1e-13)  # fields and coords in order
        np.testing.assert_array_equal(interpolate(ref, ref.points), ref.values)  # exact at the nodes
        errors.append(np.abs(interpolate(ref, QUERY) - exact(QUERY)).max())
    assert errors[-1] < 2e-3, errors
    assert 1.8 < order_of(errors, [1 / k for k in ks]) < 2.2, errors


@pytest.mark.parametrize("fmt, is_grid", [("h5_grid", True), ("npz_decreasing", True), ("mat_transposed", True),
                                          ("mat73", True), ("npz_scattered", False), ("vtu", False)])
def test_grid_kept_as_grid(fmt, is_grid, tmp_path):
    ref = read_reference(make(fmt, tmp_path, 4), FIELDS, COORDS)
    assert (ref.axes is not None) == is_grid
    if is_grid:
        assert [len(a) for a in ref.axes] == [9, 5] and all(np.all(np.diff(a) > 0) for a in ref.axes)


def test_one_dimensional(tmp_path):
    """D = 1, x unsorted: np.interp after sorting, order 2."""
    errors, ks = [], (16, 32, 64)
    xq = np.random.default_rng(2).uniform(-1, 1, size=300)
    for k in ks:
        x = np.random.default_rng(k).permutation(np.linspace(-1, 1, k + 1))
        ref = read_reference(_npz(tmp_path / f"line{k}.npz", x=x, u=np.sin(3 * x)), ("u",), ("x",))
        assert ref.axes is None
        errors.append(np.abs(interpolate(ref, xq)[:, 0] - np.sin(3 * xq)).max())
    assert 1.8 < order_of(errors, [2 / k for k in ks]) < 2.2, errors


def test_mat_row_vector_fields_at_points(tmp_path):
    """MATLAB-style scattered data: coordinates and fields as rows (1, N)."""
    _, _, pts, u, v = grid(4)
    rows = {"x": pts[None, :, 0], "t": pts[None, :, 1], "u": u.ravel()[None], "v": v.ravel()[:, None]}
    savemat(tmp_path / "s.mat", rows)
    ref = read_reference(tmp_path / "s.mat", FIELDS, COORDS)
    np.testing.assert_allclose(ref.values, exact(ref.points), atol=1e-15)


# ---- every error: (id, a function of tmp_path that raises, a substring of the one-line message) ----------

def _read_npz(tmp_path, fields=FIELDS, coords=COORDS, **arrays):
    return read_reference(_npz(tmp_path / "e.npz", **arrays), fields, coords)


def _read_grid(tmp_path, **changes):
    """A 5 x 3 grid file of u, v with some arrays changed."""
    x, t, _, u, v = grid(2)
    return _read_npz(tmp_path, **{**dict(x=x, t=t, u=u, v=v), **changes})


def _nan_field(tmp_path):
    v = grid(2)[4].copy()
    v[0, :3] = [np.nan, np.inf, -np.inf]
    return _read_grid(tmp_path, v=v)


def _garbage(tmp_path, name):
    (tmp_path / name).write_bytes(b"not a data file at all\n" * 4)
    return read_reference(tmp_path / name, FIELDS, COORDS)


def _at(fmt, points, coords=COORDS):
    """interpolate() of a k = 2 file of format `fmt` at `points`."""
    return lambda p: interpolate(read_reference(make(fmt, p, 2), FIELDS, coords), points)


ONES = np.ones(10)
ERRORS = [
    ("not-found", lambda p: read_reference(p / "nope.npz", FIELDS, COORDS), "reference file not found: "),
    ("suffix", lambda p: _garbage(p, "a.csv"),
     "unsupported reference file type '.csv'; allowed: .h5, .hdf5, .npz, .mat, .avs"),
    ("field-npz", lambda p: _read_npz(p, ("u", "w"), x=ONES, t=ONES, u=ONES),
     "field(s) 'w' not in the file (it has: t, u, x)"),
    ("field-h5", lambda p: read_reference(make("h5_grid", p, 2), ("w",), COORDS),
     "(fields/): field(s) 'w' not in the file (it has: u, v)"),
    ("field-mesh", lambda p: read_reference(make("vtu", p, 2), ("w",), COORDS),
     "(point_data): field(s) 'w' not in the file (it has: u, v)"),
    ("coordinate", lambda p: _read_npz(p, x=np.arange(3.0), u=np.ones(3), v=np.ones(3)),
     "coordinate(s) 't' not in the file (it has: u, v, x); expected one array per coordinate (x, t) or a 'points' "
     "array (N, 2)"),
    ("coordinate-h5", lambda p: read_reference(make("h5_grid", p, 2), FIELDS, ("x", "y")),
     "do not match the problem's coordinates"),
    ("grid-shape", lambda p: _read_grid(p, u=np.ones((5, 2))),
     "field 'u' has shape (5, 2); expected (5, 3) on the grid of x, t (or that grid transposed)"),
    ("ambiguous-transpose", lambda p: _read_npz(p, ("u",), ("x", "y", "t"), x=np.arange(4.0), y=np.arange(4.0),
                                                t=np.arange(5.0), u=np.ones((5, 4, 4))),
     "has shape (5, 4, 4), a transpose of the grid (4, 4, 5) of x, y, t with more than one axis order"),
    ("coordinate-not-vector", lambda p: _read_grid(p, x=np.ones((5, 2))),
     "coordinate 'x' has shape (5, 2); expected a vector (n,), (n, 1) or (1, n)"),
    ("points-shape", lambda p: _read_npz(p, points=np.ones((10, 3)), u=ONES, v=ONES),
     "'points' has shape (10, 3); expected (N, 2) with columns x, t"),
    ("field-length", lambda p: _read_npz(p, points=np.ones((10, 2)), u=np.ones(9), v=ONES),
     "field 'u' has 9 values; expected 10, one per point"),
    ("mixed-layouts", lambda p: _read_npz(p, x=np.arange(4.0), t=np.arange(4.0), u=np.ones((4, 4)), v=np.ones(4)),
     "mix grid-shaped (4, 4) and scattered (4,) arrays"),
    ("non-numeric", lambda p: _read_grid(p, u=np.full((5, 3), "a")),
     "field 'u' holds <U1 values; expected real numbers"),
    ("nan", _nan_field, "field 'v' has 3 NaN/inf value(s) of 15; all must be finite"),
    ("too-few-points", lambda p: _read_npz(p, points=np.eye(2), u=np.ones(2), v=np.ones(2)),
     "2 point(s); at least 3 are needed to interpolate in 2 dimension(s)"),
    ("grid-axis-one-point", lambda p: _read_grid(p, t=np.zeros(1), u=np.ones((5, 1)), v=np.ones((5, 1))),
     "grid axis 't' has 1 point(s); at least 2 are needed"),
    ("grid-axis-not-monotone", lambda p: _read_grid(p, x=np.array([0, 2, 1, 3, 4.0])),
     "grid axis 'x' is not strictly monotone"),
    ("mesh-dimension", lambda p: read_reference(make("vtu", p, 2), FIELDS, ("x", "y", "z", "t")),
     "the mesh points have 3 coordinates; expected at least 4"),
    ("damaged-npz", lambda p: _garbage(p, "d.npz"), "not a readable .npz file (not a zip archive"),
    ("damaged-mat", lambda p: _garbage(p, "d.mat"), "not a readable .mat file"),
    ("damaged-h5", lambda p: _garbage(p, "d.h5"), "not a readable HDF5 file"),
    ("damaged-mesh", lambda p: _garbage(p, "d.vtu"), "meshio cannot read it"),
    ("outside-grid", _at("npz_grid", [[0.1, 0.2], [1.5, 0.5], [0.0, -1.0]]),
     "2 of 3 points lie outside the reference data, e.g. (x=1.5, t=0.5); the data's extent: x in [-1, 1], t in [0, 1]"),
    ("outside-hull", _at("vtu", [[0.1, 0.2], [0.1, 1.01]]),
     "1 of 2 points lie outside the reference data, e.g. (x=0.1, t=1.01); the data's extent: x in [-1, 1], "
     "t in [0, 1] (interpolation needs the convex hull of its 15 points)"),
    ("outside-1d", lambda p: interpolate(_read_npz(p, ("u",), ("x",), x=np.linspace(0, 1, 5), u=np.ones(5)), [2.0]),
     "1 of 1 points lie outside the reference data, e.g. (x=2); the data's extent: x in [0, 1]"),
    ("outside-nan", _at("npz_grid", [[np.nan, 0.5]]), "1 of 1 points lie outside"),
    ("query-shape", _at("npz_grid", np.ones((4, 3))),
     "points to interpolate at have shape (4, 3); expected (M, 2) with columns x, t"),
    ("degenerate", lambda p: interpolate(_read_npz(p, points=np.c_[np.arange(5.0), np.arange(5.0)], u=np.ones(5),
                                                   v=np.ones(5)), [[0.5, 0.5]]),
     "do not span 2 dimensions"),
]


@pytest.mark.parametrize("action, message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(action, message, tmp_path):
    with pytest.raises(KinnError) as info:
        action(tmp_path)
    text = str(info.value)
    assert message in text and "\n" not in text, text
