"""Runs that never lie: Ctrl-C or SIGTERM in any phase of a short run exits 130 or 143 with a consistent
checkpoint, and `--resume` continues it bit for bit (CPU, float64, one thread).

Each interruption is injected deterministically: the named function of a phase sends the signal to this
process on its n-th call (before or after doing its work), wherever that call falls in the run; hypothesis
picks n, the signal and before/after (KINN_INTERRUPT_EXAMPLES=25 explores more than the default 2 per phase).
"""
import os
import signal

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kinn
from kinn.cli import main
from kinn.forms import base, points, strong
from kinn.run import figures, rundir, trainer

ARGS = ["solve", "poisson1d_multiscale", "--dtype", "float64", "--seed", "1",
        "--set", "model.widths=[4]", "--set", "points.n_interior=16", "--set", "points.n_boundary=2",
        "--set", "points.n_eval=16", "--set", "train.log_every=2", "--set", "train.eval_every=2",
        "--set", "train.resample_every=2", "--set", "train.checkpoint_every=3", "--set", "train.progress=false"]

# phase: (object, attribute) whose n-th call sends the signal
WINDOWS = {
    "sampling": (points.PointSets, "before_step"),        # a resampling step's draw
    "loss": (strong.StrongForm, "loss"),                  # the forward pass (also the set-up's probe)
    "backward": (trainer._Loop, "backward"),              # Adam's and every L-BFGS evaluation's backward pass
    "adam_step": (torch.optim.Adam, "step"),              # between the update and the step counter
    "schedule": (torch.optim.lr_scheduler.LambdaLR, "step"),
    "evaluation": (points.PointScorer, "during"),
    "checkpoint": (rundir, "save_checkpoint"),           # periodic and final checkpoint writes
    "lbfgs_chunk": (torch.optim.LBFGS, "step"),           # a whole chunk of L-BFGS iterations
    "final_writes": (base, "write_summary"),              # history.json, figures, result.json
    "fields": (rundir, "write_fields"),
}


def solve(tmp_path, name, steps=6, lbfgs=4):
    return main([*ARGS, "--steps", str(steps), "--lbfgs", str(lbfgs), "--out", str(tmp_path), "--set", f'name="{name}"'])


def outcome(run_dir):
    """What must be identical: the history (but its clock) and the parameters."""
    r = kinn.load(run_dir)
    rows = [{k: v for k, v in row.items() if k != "time"} for row in r.history.rows]
    return rows, (r.history.adam_steps, r.history.lbfgs_iters), r.model.state_dict()


@pytest.fixture(scope="module")
def quick():
    """No figures (seconds each); every other file of the run directory is written as always."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("fields", "history"):
            mp.setattr(figures, name, lambda path, *args, **kwargs: None)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, quick):
    out = tmp_path_factory.mktemp("reference")
    assert solve(out, "ref") == 0
    return outcome(out / "ref")


def signalling(original, sig: int, n: int, after: bool):
    calls = {"n": 0}

    def wrapped(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n and not after:
            os.kill(os.getpid(), sig)
        result = original(*args, **kwargs)
        if calls["n"] == n and after:
            os.kill(os.getpid(), sig)
        return result

    return wrapped


@pytest.mark.parametrize("window", WINDOWS)
@settings(max_examples=int(os.environ.get("KINN_INTERRUPT_EXAMPLES", 2)), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 8), sig=st.sampled_from([signal.SIGINT, signal.SIGTERM]), after=st.booleans())
def test_a_signal_in_any_phase_resumes_bit_for_bit(tmp_path, reference, window, n, sig, after):
    owner, attr = WINDOWS[window]
    name = f"{window}-{n}-{int(sig)}-{int(after)}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(owner, attr, signalling(getattr(owner, attr), sig, n, after))
        code = solve(tmp_path, name)
    run_dir = tmp_path / name
    assert code in (0, 128 + sig), code
    if code and not (run_dir / "model.pt").exists():  # stopped during set-up: nothing may be left
        assert not run_dir.exists(), sorted(p.name for p in run_dir.iterdir())
        return
    assert not list(run_dir.rglob(".*.tmp"))
    if code:
        assert (run_dir / "result.json").is_file()  # the run directory is complete, checkpoint included
        assert main(["solve", "--resume", str(run_dir)]) == 0
    rows, counts, params = outcome(run_dir)
    ref_rows, ref_counts, ref_params = reference
    assert counts == ref_counts
    assert rows == ref_rows
    assert all(torch.equal(params[k], ref_params[k]) for k in ref_params)


def test_a_finished_run_continued_with_a_larger_budget_is_the_run_given_it_at_once(tmp_path, reference):
    assert solve(tmp_path, "run", steps=3, lbfgs=0) == 0
    stale = tmp_path / "run" / ".model.pt.abc123.tmp"  # what kill -9 during a checkpoint write leaves
    stale.write_bytes(b"half a checkpoint")
    assert main(["solve", "--resume", str(tmp_path / "run"), "--steps", "6", "--lbfgs", "4"]) == 0
    assert not stale.exists()
    assert "steps = 6" in (tmp_path / "run" / "config.toml").read_text()  # config.toml describes the run
    rows, counts, params = outcome(tmp_path / "run")
    assert (rows, counts) == reference[:2]
    assert all(torch.equal(params[k], reference[2][k]) for k in params)
