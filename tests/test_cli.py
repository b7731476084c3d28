"""The command line: each kind of bad input exits 2 with one line naming what is allowed."""
import json
import shutil
import subprocess
import sys

import pytest

from kinn.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", [
    (["solve", "poison2d"], "unknown problem 'poison2d' (did you mean 'poisson2d'?); valid: "),
    (["solve", "poisson2d", "--solver", "mpl"], "unknown family 'mpl' (did you mean 'mlp'?); valid: fno, kan, mlp"),
    (["solve", "helmholtz2d", "--form", "inverse"], "problem 'helmholtz2d' has no inverse form; it has: strong"),
    (["solve", "poisson2d", "--form", "weak"], "argument --form: invalid choice: 'weak'"),
    (["solve", "poisson2d", "--steps", "-5"], "argument --steps: must be a non-negative integer, got '-5'"),
    (["solve", "poisson2d", "--steps", "2.5"], "argument --steps: must be a non-negative integer, got '2.5'"),
    (["solve", "poisson2d", "--device", "tpu"], "unknown device 'tpu'; valid: auto, cpu, cuda, cuda:N"),
    (["solve", "poisson2d", "--set", "train.stepz=3"], "unknown key(s) train.stepz; allowed in [train]: "),
    (["solve", "poisson2d", "--set", "model.widths=[0]"], "model.widths must be a non-empty list of positive integers"),
    (["solve", "poisson2d", "--solver", "kan", "--set", "model.order=1"], "use order >= 2"),
    (["solve"], "name a problem to solve (see `kinn list`), or --resume RUN_DIR"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_gives_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("kinn: error: ") and err.count("\n") == 1, err
    assert message in err


def test_config_file_errors(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('problem = "poisson2d"\nsolverr = "mlp"\n')
    code, _, err = run(capsys, "solve", "poisson2d", "--config", str(bad))
    allowed = "derivatives, family, form, model, name, out, points, problem, train"
    assert code == 2 and f"unknown key(s) solverr; allowed: {allowed}" in err
    bad.write_text("[train\n")
    code, _, err = run(capsys, "solve", "poisson2d", "--config", str(bad))
    assert code == 2 and "is not valid TOML" in err
    code, _, err = run(capsys, "solve", "poisson2d", "--config", str(tmp_path / "none.toml"))
    assert code == 2 and "config file not found" in err


def test_missing_or_malformed_data_file(capsys, tmp_path, monkeypatch):
    from kinn.data.reference import _load

    monkeypatch.setenv("KINN_DATA", str(tmp_path))
    _load.cache_clear()
    out = ["--out", str(tmp_path / "runs")]
    code, _, err = run(capsys, "solve", "burgers1d", "--steps", "1", *out)
    assert code == 2 and "reference data file not found" in err and "burgers1d.h5" in err
    (tmp_path / "burgers1d.h5").write_bytes(b"not an hdf5 file at all")
    code, _, err = run(capsys, "solve", "burgers1d", "--steps", "1", *out)
    assert code == 2 and "is not a readable HDF5 file" in err
    import h5py

    with h5py.File(tmp_path / "burgers1d.h5", "w") as f:
        f.attrs["layout"] = "grid"
        f.attrs["coord_names"] = "x,t"
        f["fields/v"] = [1.0]
    code, _, err = run(capsys, "solve", "burgers1d", "--steps", "1", *out)
    assert code == 2 and "missing field(s) fields/u" in err
    assert not (tmp_path / "runs").exists()  # refused input leaves no half-made run directory behind
    _load.cache_clear()


def test_solve_json_and_show(capsys, tmp_path):
    code, out, err = run(capsys, "solve", "poisson1d_multiscale", "--steps", "5", "--lbfgs", "0",
                         "--out", str(tmp_path), "--json", "--set", "points.n_eval=50")
    assert code == 0, err
    s = json.loads(out)
    assert set(s) == {"problem", "family", "form", "params", "steps", "adam_steps", "lbfgs_iters", "wall_time",
                      "train_time", "stop_reason", "seed", "dtype", "run_dir", "errors", "residual_rms",
                      "reference", "checks"}
    assert s["steps"] == 5 and s["errors"]["u"]["rel_l2"] > 0
    code, out, _ = run(capsys, "show", s["run_dir"], "--json")
    assert code == 0 and json.loads(out) == s
    code, out, _ = run(capsys, "show", s["run_dir"])
    assert "relative L2" in out and s["run_dir"] in out
    code, _, err = run(capsys, "show", str(tmp_path / "nothing"))
    assert code == 2 and "is this a kinn run directory?" in err


def test_list_shows_problems_forms_and_families(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    for name in ("poisson2d", "burgers1d", "heat_multiscale", "helmholtz2d", "poisson1d_multiscale", "mlp"):
        assert name in out
    assert "widths=" in out


@pytest.mark.skipif(shutil.which("kinn") is None, reason="console script not installed")
def test_console_script_exit_code():
    p = subprocess.run(["kinn", "solve", "nope"], capture_output=True, text=True)
    assert p.returncode == 2 and p.stdout == "" and p.stderr.startswith("kinn: error: unknown problem 'nope'")
    p = subprocess.run([sys.executable, "-m", "kinn", "list"], capture_output=True, text=True)
    assert p.returncode == 0 and "poisson2d" in p.stdout
