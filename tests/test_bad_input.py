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


# --- the inverse (boundary-integral) form: a problem file whose boundary or data are wrong -------------

INVERSE_FILE = '''
from kinn import BoundaryIntegralForm, DomainIntegral, ParticularSolution, Problem, Rectangle, Value
from kinn.boundary import Boundary, Kelvin, Laplace, Loop, Segment, box, circle, polygon
from kinn.pde import ops

boundary, kernel, source = box((0, 0), (1, 1), 2), Laplace(), None
given = {{t: Value(0.0) for t in ("bottom", "right", "top", "left")}}
{case}
bad = Problem(name="bad", domain=Rectangle([0, 0], [1, 1]), exact=lambda x: x[:, :1] * 0,
              inverse=BoundaryIntegralForm(boundary, kernel, flux=lambda u, n: ops.normal(u, n), given=given,
                                           source=source))
'''

INVERSE_CASES = [  # (the lines that make the problem file bad, what the one line says)
    ("boundary = Boundary([[Segment((0, 0), (1, 0)), Segment((1, 0), (1, 1)), Segment((1, 1.1), (0, 0))]])",
     "the loop does not close: panel 1 ends at [1.0, 1.0] but panel 2 starts at [1.0, 1.1] (gap 0.1; allowed"),
    ("boundary = polygon([(0, 0), (0, 1), (1, 1), (1, 0)], tags=['bottom', 'right', 'top', 'left'])",
     "the outer loop (loop 0) is clockwise (signed area -1); allowed: counter-clockwise, with holes clockwise"),
    ("boundary = Boundary(box((0, 0), (4, 4), 2).loops + [circle((2, 2), 1, 4, tag='hole')])",
     "hole loop 1 is counter-clockwise (signed area 3.142); allowed: holes clockwise"),
    ("del given['left']", "the inverse form has no boundary condition on panel tag(s) 'left'; give one in given= "
                          "for every tag ('bottom', 'right', 'top', 'left')"),
    ("kernel = Kelvin(1.0, 0.3, 'strain')\ngiven = {t: (Value(0.0), None) for t in given}",
     "boundary tag 'bottom': give 2 data (Value or Flux), one per component, got 2: Value, NoneType"),
    ("given['top'] = Value(lambda x: x)",
     "Value(g) on boundary tag 'top' gave shape (10, 2) at 10 points (N, 2); allowed: (N,) or (N, 1)"),
    ("given['top'] = Value(lambda x: 1 / (x[:, 0] - x[:, 0]))", "Value(g) on boundary tag 'top' is NaN or infinite"),
    ("given['top'] = Value('1')", "Value(g): g is a finite number or a function of points (N, 2), got '1'"),
    ("source = DomainIntegral(lambda x: x)", "DomainIntegral's f gave shape"),
    ("source = ParticularSolution(lambda x: x)", "ParticularSolution's u gave shape"),
    ("source = ParticularSolution(lambda x: x[:, 0].log())", "ParticularSolution's u is NaN or infinite"),
    ("kernel = 'helmholtz'", "the inverse form needs a fundamental solution (kinn.boundary.Laplace or Kelvin), got "
                             "str: only operators with one have a boundary integral form"),
    ("kernel = Laplace", "the inverse form's kernel is the class Laplace, not an instance; give one: Laplace()"),
    ("kernel = Kelvin(1.0, 0.3, 'strain')\ngiven = {t: (Value(0.0), Value(0.0)) for t in given}",
     "problem 'bad' has 1 field(s); the inverse form's kernel Kelvin has 2"),
]


@pytest.mark.parametrize("case, message", INVERSE_CASES, ids=[c.split("\n")[-1][:40] for c, _ in INVERSE_CASES])
def test_a_bad_inverse_form_is_one_line_exit_2_and_leaves_nothing(capsys, tmp_path, case, message):
    path = tmp_path / "bad_inverse.py"
    path.write_text(INVERSE_FILE.format(case=case))
    out = tmp_path / "runs"
    code = main(["solve", f"{path}:bad", "--form", "inverse", "--family", "kan", *SMALL, "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("kinn: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err
    assert not out.exists()


def test_an_inverse_form_is_refused_where_the_problem_declares_none(capsys, tmp_path):
    """A PDE without a fundamental solution has no inverse form to declare: asking for one says which it has."""
    code = main(["solve", "burgers1d", "--form", "inverse", *SMALL, "--out", str(tmp_path / "runs")])
    _, err = capsys.readouterr()
    assert code == 2 and err == "kinn: error: problem 'burgers1d' has no inverse form; it has: strong\n", err
    assert not (tmp_path / "runs").exists()


def test_an_inverse_run_refuses_points_outside_the_boundary(tmp_path):
    """The interior field is the representation formula, which holds strictly inside Γ only."""
    r = kinn.solve("flower", "kan", "inverse", steps=1, lbfgs=0, n_eval=50, write=False, progress=False)
    assert np.isfinite(r.predict([[0.1, 0.2]])["u"]).all()
    for x, n in (([[0.1, 0.2], [5.0, 5.0]], 1), ([[np.nan, 0.0], [9.0, 0.0], [0.0, 9.0]], 3)):
        with pytest.raises(KinnError, match=rf"^{n} of {len(x)} evaluation points lie outside the domain or on its "
                                            "boundary, e\\.g\\. .*; the representation formula holds inside only$"):
            r.predict(x)
