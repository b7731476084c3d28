"""The operator-dataset layout (kinn.data.datasets): round trip, subsampling, and one clear error per malformed file."""
from __future__ import annotations

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from kinn.data.datasets import read_dataset, write_dataset  # noqa: E402
from kinn.errors import KinnError  # noqa: E402

TEXT = dict(description="a test set", equation="-u'' = f", method="by hand", created_by="tests/test_datasets.py")


def arrays(samples=6, shape=(9, 5)):
    rng = np.random.default_rng(0)
    return dict(inputs=rng.standard_normal((samples, 2) + shape), outputs=rng.standard_normal((samples, 1) + shape),
                axes={"x": np.linspace(0, 1, shape[0]), "y": np.arange(shape[1]) / shape[1]},
                train=np.arange(4), test=np.array([4, 5]), input_names=("a", "f"), output_names=("u",),
                periodic=("y",))


def write(path, **change):
    kw = {**arrays(), **TEXT, **change}
    return write_dataset(path, **kw)


def test_round_trip_is_exact(tmp_path):
    src = arrays()
    path = write(tmp_path / "set.h5", nu=0.25, n=9, note="free text")
    d = read_dataset(path)
    np.testing.assert_array_equal(d.inputs, src["inputs"])
    np.testing.assert_array_equal(d.outputs, src["outputs"])
    assert d.inputs.dtype == np.float64
    assert list(d.axes) == ["x", "y"] and d.dim == 2 and d.shape == (9, 5)
    for k in d.axes:
        np.testing.assert_array_equal(d.axes[k], src["axes"][k])
    np.testing.assert_array_equal(d.train, src["train"])
    np.testing.assert_array_equal(d.test, src["test"])
    assert d.input_names == ("a", "f") and d.output_names == ("u",) and d.periodic == ("y",)
    assert d.attrs["nu"] == 0.25 and d.attrs["n"] == 9 and d.attrs["note"] == "free text"
    assert d.attrs["format"] == "kinn-operator-dataset" and d.attrs["version"] == 1
    assert d.attrs["created_by"] == "tests/test_datasets.py" and d.path == path
    x, y = d.split("test")
    np.testing.assert_array_equal(x, src["inputs"][[4, 5]])
    np.testing.assert_array_equal(y, src["outputs"][[4, 5]])
    with pytest.raises(KinnError, match="unknown split 'val'"):
        d.split("val")


def test_float32_and_no_periodic_axes(tmp_path):
    src = arrays()
    path = write(tmp_path / "f32.h5", inputs=src["inputs"].astype(np.float32),
                 outputs=src["outputs"].astype(np.float32), periodic=())
    d = read_dataset(path)
    assert d.inputs.dtype == np.float32 and d.periodic == () and d.attrs["periodic"] == ""


def test_names_resolve_in_the_data_folder(tmp_path, monkeypatch):
    write(tmp_path / "named.h5")
    monkeypatch.setenv("KINN_DATA", str(tmp_path))
    assert read_dataset("named.h5").shape == (9, 5)


def test_subsample(tmp_path):
    d = read_dataset(write(tmp_path / "set.h5", **arrays(shape=(9, 6))))
    s = d.subsample(2)
    assert s.shape == (5, 3) and s.inputs.shape == (6, 2, 5, 3)
    np.testing.assert_array_equal(s.inputs, d.inputs[:, :, ::2, ::2])
    np.testing.assert_array_equal(s.outputs, d.outputs[:, :, ::2, ::2])
    np.testing.assert_array_equal(s.axes["x"], np.linspace(0, 1, 5))  # end points kept
    np.testing.assert_array_equal(s.axes["y"], np.arange(3) / 3)  # still uniform on the period
    assert s.attrs["subsample_stride"] == 2 and s.subsample(1).attrs["subsample_stride"] == 2
    with pytest.raises(KinnError, match=r"axis 'x' has 9 nodes; stride 3"):
        d.subsample(3)
    with pytest.raises(KinnError, match=r"periodic axis 'y' has 6 nodes, not a multiple of stride 4"):
        d.subsample(4)
    with pytest.raises(KinnError, match="positive integer"):
        d.subsample(0)


# ---------------------------------------------------------------------------------------------------------
# malformed files: each one error naming the file and the item
# ---------------------------------------------------------------------------------------------------------
def _del(key):
    def fn(f):
        del f[key]
    return fn


def _set(key, value):
    def fn(f):
        del f[key]
        f[key] = value
    return fn


def _attr(key, value):
    def fn(f):
        if value is None:
            del f.attrs[key]
        else:
            f.attrs[key] = value
    return fn


MALFORMED = {
    "missing format": (_attr("format", None), "missing root attribute 'format'"),
    "wrong format": (_attr("format", "something-else"), "'format' is 'something-else', expected 'kinn-operator-dataset'"),
    "wrong version": (_attr("version", 2), "'version' is 2, expected 1"),
    "missing axes attr": (_attr("axes", None), "missing root attribute 'axes'"),
    "missing outputs": (_del("outputs"), "missing dataset 'outputs'"),
    "missing inputs": (_del("inputs"), "missing dataset 'inputs'"),
    "missing grid axis": (_del("grid/y"), "missing dataset 'grid/y'"),
    "missing split": (_del("split/test"), "missing dataset 'split/test'"),
    "sample counts": (_set("outputs", np.zeros((5, 1, 9, 5))), "'inputs' has 6 samples but 'outputs' has 5"),
    "grid shapes": (_set("outputs", np.zeros((6, 1, 9, 4))), r"'inputs' grid shape \(9, 5\) differs from 'outputs'"),
    "grid length": (_set("grid/x", np.linspace(0, 1, 8)), r"'grid/x' has shape \(8,\), expected \(9,\)"),
    "grid not increasing": (_set("grid/x", np.linspace(1, 0, 9)), "'grid/x' must be finite and strictly increasing"),
    "rank": (_attr("axes", "x"), r"'inputs' has shape \(6, 2, 9, 5\), expected \(samples, channels\) \+ 1 grid"),
    "names count": (_attr("input_names", "a"), "'input_names' = 'a' names 1 channel"),
    "output names count": (_attr("output_names", "u,v"), "'output_names' = 'u,v' names 2 channel"),
    "periodic unknown axis": (_attr("periodic", "t"), "'periodic' names t, not among the axes x,y"),
    "split out of range": (_set("split/test", np.array([4, 6])), r"'split/test' has indices outside 0..5"),
    "split negative": (_set("split/train", np.array([-1, 0])), r"'split/train' has indices outside 0..5"),
    "split overlap": (_set("split/test", np.array([3, 4])), "'split/train' and 'split/test' overlap in 1 sample"),
    "split repeats": (_set("split/test", np.array([4, 4])), "'split/test' repeats sample indices"),
    "split not integer": (_set("split/test", np.array([4.0, 5.0])), "'split/test' must be a 1-D array of integer"),
    "empty train": (_set("split/train", np.zeros(0, np.int64)), "'split/train' is empty"),
    "non-finite": (_set("outputs", np.where(np.arange(6)[:, None, None, None] == 3, np.nan, np.zeros((6, 1, 9, 5)))),
                   "'outputs' has 45 non-finite value.*sample 3"),
    "integer inputs": (_set("inputs", np.zeros((6, 2, 9, 5), np.int32)), "'inputs' has dtype int32, expected a float"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_file_names_the_item(tmp_path, case):
    change, message = MALFORMED[case]
    path = write(tmp_path / "bad.h5")
    with h5py.File(path, "a") as f:
        change(f)
    with pytest.raises(KinnError, match=message) as info:
        read_dataset(path)
    text = str(info.value)
    assert text.startswith("bad.h5: ") and "data/README.md" in text


def test_missing_file_and_not_hdf5(tmp_path):
    with pytest.raises(KinnError, match=r"operator dataset not found: .*nowhere\.h5.*data/README.md"):
        read_dataset(tmp_path / "nowhere.h5")
    (tmp_path / "text.h5").write_text("not hdf5\n")
    with pytest.raises(KinnError, match=r"text\.h5: not an HDF5 file.*data/README.md"):
        read_dataset(tmp_path / "text.h5")


@pytest.mark.parametrize("change, message", [
    (dict(created_by=""), "needs the text attribute.*created_by"),
    (dict(format="mine"), "format are set by write_dataset"),
    (dict(input_names=("a",)), "'input_names' = 'a' names 1 channel"),
    (dict(input_names=("a", "b,c")), "input_names must be non-empty names without commas"),
    (dict(outputs=np.full((6, 1, 9, 5), np.inf)), "'outputs' has 270 non-finite"),
    (dict(test=np.array([3])), "overlap"),
    (dict(extra=None), "attributes must be strings or numbers"),
])
def test_write_checks_before_writing(tmp_path, change, message):
    path = tmp_path / "w.h5"
    with pytest.raises(KinnError, match=message):
        write(path, **change)
    assert not path.exists() and not list(tmp_path.iterdir())  # nothing half-written left behind


# ---------------------------------------------------------------------------------------------------------
# the generators and their scripts, at toy sizes
# ---------------------------------------------------------------------------------------------------------
def test_make_darcy_script(tmp_path, capsys, load_script):
    out = tmp_path / "darcy.h5"
    assert load_script("make_darcy").main(["--out", str(out), "--n", "17", "--n-train", "3", "--n-test", "2", "--quiet"]) == 0
    assert "self-check" in capsys.readouterr().out
    d = read_dataset(out)
    assert d.inputs.shape == d.outputs.shape == (5, 1, 17, 17) and d.inputs.dtype == np.float32
    assert d.input_names == ("a",) and d.output_names == ("u",) and list(d.axes) == ["x", "y"] and d.periodic == ()
    assert set(np.unique(d.inputs)) <= {3.0, 12.0}
    assert np.all(d.outputs[:, :, [0, -1], :] == 0) and np.all(d.outputs[:, :, :, [0, -1]] == 0)
    np.testing.assert_array_equal(d.train, [0, 1, 2])
    np.testing.assert_array_equal(d.test, [3, 4])
    assert d.attrs["created_by"].startswith("python scripts/make_darcy.py --out")
    assert d.attrs["n"] == 17 and d.attrs["seed"] == 0 and d.attrs["tau"] == 3.0 and "finite-volume" in d.attrs["method"]
    assert d.subsample(2).shape == (9, 9)
    assert load_script("make_darcy").main(["--out", str(tmp_path / "even.h5"), "--n", "16", "--quiet"]) == 2
    assert "n must be odd" in capsys.readouterr().err


def test_make_burgers_script(tmp_path, capsys, load_script):
    out = tmp_path / "burgers.h5"
    args = ["--out", str(out), "--n", "64", "--n-train", "3", "--n-test", "1", "--t-final", "0.1", "--quiet"]
    assert load_script("make_burgers_data").main(args) == 0
    assert "self-check" in capsys.readouterr().out
    d = read_dataset(out)
    assert d.inputs.shape == d.outputs.shape == (4, 1, 64) and d.outputs.dtype == np.float32
    assert d.input_names == ("u0",) and d.periodic == ("x",)
    np.testing.assert_array_equal(d.axes["x"], np.arange(64) / 64)
    assert d.attrs["nu"] == 0.1 and d.attrs["t_final"] == 0.1 and d.attrs["n_steps"] >= 50
    assert d.attrs["check_error"] < 1e-6
