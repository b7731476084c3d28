"""Every bad input is refused up front: one line `kinn: error: ...` on stderr naming what is allowed, exit 2,
no traceback, and no run directory left behind (nor a resumed one changed)."""
import shutil

import h5py
import numpy as np
import pytest

import kinn
from kinn.cli import main
from kinn.errors import KinnError

SMALL = ["--steps", "2", "--lbfgs", "0", "--set", "points.n_interior=16", "--set", "points.n_boundary=4",
         "--set", "points.n_eval=16", "--set", "train.progress=false"]

CASES = [  # (argv with {out} {file} {dir} {run} {latin1} placeholders, what the one line says)
    (["solve", "poisson2d", "--seed", str(2**64)], "train.seed must be an integer in 0 .. 2**63 - 1"),
    (["solve", "poisson2d", "--set", "points.n_interior=0"], "the training point set 'pde' is empty"),
    (["solve", "poisson2d", "--set", "points.n_boundary=0"], "the training point set 'bc:dirichlet0' is empty"),
    (["solve", "poisson2d", "--set", "points.n_interior=1000000000000"], "out of memory setting up the run"),
    (["solve", "poisson2d", "--config", "{dir}"], "is a folder; give a TOML file"),
    (["solve", "poisson2d", "--config", "{latin1}"], "is not UTF-8 text; give a TOML file"),
    (["solve", "poisson2d", "--out", "{file}"], "is a file, not a folder"),
    (["show", "{file}"], "is a file, not a kinn run directory"),
    (["solve", "poisson2d", "--set", "train.weights={{bcc=100}}"], "train.weights names no loss term: bcc; allowed: bc,"),
    (["solve", "poisson2d", "--set", "model=5"], "model must be a table of settings (model.KEY=VALUE), got 5"),
    (["solve", "poisson2d", "--set", "train=0"], "train must be a table of settings (train.KEY=VALUE), got 0"),
    (["solve", "poisson2d", "--lr", "inf"], "train.lr must be a finite number, got inf"),
    (["solve", "poisson2d", "--set", "train.time_limit=nan"], "train.time_limit must be a finite number, got nan"),
    (["solve", "poisson2d", "--family", "kan", "--set", 'model.hidden="abc"'], "hidden must be a list of hidden-layer widths"),
    (["solve", "poisson2d", "--lr", "-1e-3"], "train.lr must be > 0, got -0.001"),
    ([], "name a command: list, solve, compare, show"),
    (["solve", "--resume", "{run}/empty"], "config.toml names no problem: it is empty or truncated"),
    (["solve", "--resume", "{run}/truncated"], "model.pt does not fit the network its config.toml describes"),
    (["solve", "poisson2d", "--resume", "{run}/done"], "is a run of problem 'poisson1d_multiscale', not 'poisson2d'"),
    (["solve", "--resume", "{run}/done", "--seed", "3"], "only steps, lbfgs, lr, time_limit, target_error, "
                                                          "checkpoint_every, checkpoint_seconds may change (got seed)"),
    (["solve", "--resume", "{file}"], "is not a kinn run directory (not a folder)"),
    (["solve", "burgers1d", "--set", "points.n_initial=4"], "fields/u holds NaN or infinite values"),
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run directory, and copies of it with an empty and with a truncated config.toml."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["solve", "poisson1d_multiscale", *SMALL, "--set", "model.widths=[4]", "--out", str(root),
                 "--set", 'name="done"']) == 0
    for name in ("empty", "truncated"):
        shutil.copytree(root / "done", root / name)
    (root / "empty" / "config.toml").write_text("")
    text = (root / "done" / "config.toml").read_text()
    (root / "truncated" / "config.toml").write_text(text.replace("widths = [\n    4,\n]", "widths = [\n    5,\n]")
                                                    .replace("widths = [ 4, ]", "widths = [ 5, ]")
                                                    .replace("widths = [4]", "widths = [5]"))
    assert (root / "truncated" / "config.toml").read_text() != text, text
    return root


@pytest.fixture
def nan_reference(tmp_path, monkeypatch):
    """KINN_DATA with a copy of burgers1d.h5 in which one reference value is NaN."""
    from kinn.data.reference import _load, resolve

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(resolve("burgers1d.h5"), data / "burgers1d.h5")
    with h5py.File(data / "burgers1d.h5", "r+") as f:
        u = f["fields/u"][...]
        u.flat[7] = np.nan
        f["fields/u"][...] = u
    monkeypatch.setenv("KINN_DATA", str(data))
    _load.cache_clear()
    yield
    _load.cache_clear()


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:4]) or "nothing" for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(capsys, tmp_path, finished, nan_reference, argv, message):
    (tmp_path / "a_folder").mkdir()
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "latin1.toml").write_bytes('problem = "poisson2d" # é\n'.encode("latin-1"))
    out = tmp_path / "runs"
    before = sorted(p.relative_to(finished) for p in finished.rglob("*"))
    fill = dict(out=out, file=tmp_path / "a_file", dir=tmp_path / "a_folder", run=finished,
                latin1=tmp_path / "latin1.toml")
    args = [a.format(**fill) for a in argv]
    if args[:1] == ["solve"] and "--resume" not in args and "--out" not in args:
        args += ["--out", str(out)]
    if args[:1] == ["solve"] and "--resume" not in args:
        args = args[:1] + SMALL + args[1:]  # the case's own settings come last, and win
    code = main(args)
    _, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("kinn: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err
    assert not out.exists()  # no run directory, not even an empty folder
    assert sorted(p.relative_to(finished) for p in finished.rglob("*")) == before  # nothing written there


def test_predict_refuses_points_of_the_wrong_shape(finished):
    r = kinn.load(finished / "done")
    assert r.predict([[0.5], [0.25]])["u"].shape == (2,)
    with pytest.raises(KinnError, match=r"points must have shape \(N, 1\) for problem 'poisson1d_multiscale', got \(2, 3\)"):
        r.predict(np.zeros((2, 3)))
