"""Random configs and command lines either work or fail with a one-line KinnError, never a traceback."""
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kinn import registry  # noqa: E402
from kinn.run.pipeline import resolve_config  # noqa: E402
from kinn.cli import parser  # noqa: E402
from kinn.errors import KinnError  # noqa: E402

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=8), st.lists(st.integers(-2, 70), max_size=4))
KEYS = {
    "train": ["steps", "lr", "schedule", "lbfgs", "dtype", "device", "seed", "weights", "eval_every", "bogus"],
    "points": ["n_interior", "n_boundary", "n_eval", "sampler", "bogus"],
    "model": ["widths", "activation", "skip", "preset", "hidden", "grid", "order", "basis", "between", "bogus"],
}
tables = st.fixed_dictionaries({}, optional={
    section: st.dictionaries(st.sampled_from(keys), scalars, max_size=3) for section, keys in KEYS.items()})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=tables, solver=st.sampled_from(["mlp", "kan", "nope"]))
def test_random_configs_build_or_say_why(config, solver):
    import torch

    problem = registry.get_problem("poisson2d")
    config = {k: {kk: vv for kk, vv in v.items() if vv is not None} for k, v in config.items()}
    try:
        cfg = resolve_config(problem, solver, None, config)
        family = registry.get_family(cfg.family)
        problem.form(cfg.form).build(problem, family, cfg).to(torch.device("cpu"), torch.float64)
    except KinnError as e:
        assert "\n" not in str(e) and str(e)


words = st.sampled_from(["solve", "poisson2d", "burgers1d", "--steps", "-1", "3", "x", "--dtype", "float16",
                         "--form", "energy", "--solver", "kan", "--set", "model.grid=0", "train.lr=-1", "--device",
                         "cuda:9", "--lbfgs", "compare", "--seeds", "0", "--budget-seconds", "--match", "show"])


@settings(max_examples=150, deadline=None)
@given(argv=st.lists(words, max_size=6))
def test_random_command_lines_parse_or_say_why(argv):
    try:
        parser().parse_args(argv)
    except KinnError as e:
        assert "\n" not in str(e) and str(e)
    except SystemExit as e:  # --help
        assert e.code == 0
