"""The `kinn` command line: list, solve, compare, show.

    kinn list
    kinn solve NAME [--family mlp] [--form strong] [--steps N] [--lbfgs N] [--lr LR] [--device D]
                    [--dtype float32|float64] [--seed S] [--out DIR] [--config FILE] [--set KEY=VALUE] [--json]
    kinn solve --resume RUN_DIR [--json]
    kinn compare NAME [--families mlp,kan,deepxde] [--form F] [--seeds N] [--budget-steps N | --budget-seconds S]
                      [--lbfgs N] [--match params|width|none] [--params N] [--lr LR] [--device D] [--dtype D]
                      [--out DIR] [--config FILE] [--set KEY=VALUE | FAMILY.OPTION=VALUE] [--json]
    kinn show RUN_DIR [--json]

Mistakes (an unknown name, a bad number, a malformed file) print one line `kinn: error: ...` and exit 2.
A run stopped by Ctrl-C or SIGTERM writes its run directory and exits 130 or 143 (128 + the signal).
`--solver` and `--solvers` are the older names of `--family` and `--families`, and still work.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import signal
import sys
import threading

from kinn.errors import KinnError
from kinn.run.config import DERIVATIVES


class _Parser(argparse.ArgumentParser):
    commands: tuple = ()  # the top-level parser's subcommands, named when none is given

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # argparse takes "-1e-3" for an option ("--lr: expected one argument"); it is a number
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

    def error(self, message):  # one line, not argparse's usage block
        if self.commands and "required: command" in message:
            message = f"name a command: {', '.join(self.commands)} (kinn COMMAND --help for its options)"
        raise KinnError(message)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got '{text}'")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got '{text}'")
    return value


def _setting(text: str) -> tuple[list[str], object]:
    """KEY=VALUE with a dotted key and a TOML value: model.widths=[64,64], train.lr=1e-4."""
    from kinn.run.config import tomllib

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. model.widths=[64,64]), got '{text}'")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word: a string
    return key.split("."), parsed


def _shared(p: argparse.ArgumentParser) -> None:
    """The options `solve` and `compare` share, with the same meaning."""
    from kinn.registry import form_kinds

    p.add_argument("--form", choices=form_kinds(), help="default: the problem's first form")
    p.add_argument("--lr", type=float, help="Adam learning rate")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dtype", choices=("float32", "float64"))


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kinn", description="Physics-informed PDE solvers: KAN, FNO and MLP on a problem catalogue.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="problems with their forms, and the families with their options")
    s = sub.add_parser("solve", help="solve a problem and write a run directory")
    s.add_argument("problem", nargs="?", help="a problem name (see `kinn list`)")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run from its last checkpoint")
    s.add_argument("--family", "--solver", dest="family", help="the family: mlp, kan, fno (default mlp)")
    _shared(s)
    s.add_argument("--steps", type=_count, help="Adam steps")
    s.add_argument("--lbfgs", type=_count, help="L-BFGS iterations after Adam")
    s.add_argument("--seed", type=_count)
    s.add_argument("--derivatives", choices=DERIVATIVES,
                   help="how residuals get derivatives: forward jets or nested autograd (default auto)")
    s.add_argument("--out", help="parent folder of the run directory (default runs/)")
    s.add_argument("--config", help="a TOML config file (a run directory's config.toml re-runs it)")
    s.add_argument("--set", dest="settings", action="append", type=_setting, default=[], metavar="KEY=VALUE",
                   help="any config entry, e.g. --set model.widths=[64,64] --set points.n_interior=4000")
    s.add_argument("--json", action="store_true", help="print one JSON object (see README) instead of a summary")
    c = sub.add_parser("compare", help="solve a problem with several solver families under equal budgets")
    c.add_argument("problem", help="a problem name (see `kinn list`)")
    c.add_argument("--families", "--solvers", dest="families", default="mlp,kan",
                   help="comma-separated families; deepxde adds DeepXDE's own Model")
    _shared(c)
    c.add_argument("--seeds", type=_count, default=3, help="runs per family, seeds 0 .. N-1 (default 3)")
    budget = c.add_mutually_exclusive_group()
    budget.add_argument("--budget-steps", type=_count, help="Adam steps per run (default: the problem's)")
    budget.add_argument("--budget-seconds", type=_seconds, help="seconds of training per run (Adam only)")
    c.add_argument("--lbfgs", type=_count, help="L-BFGS iterations after Adam, for every family (default 0)")
    c.add_argument("--match", choices=("params", "width", "none"), default="params",
                   help="size families to equal parameter counts (default), equal widths, or their own defaults")
    c.add_argument("--params", type=_count, help="the parameter count --match params aims at")
    c.add_argument("--out", help="output folder (default runs/compare-NAME-TIME)")
    c.add_argument("--config", help="a TOML config file with [train] and [points] tables")
    c.add_argument("--set", dest="settings", action="append", type=_setting, default=[], metavar="KEY=VALUE",
                   help="a config entry (--set points.n_interior=4000) or a family's option (--set kan.grid=5)")
    c.add_argument("--json", action="store_true", help="print table.json instead of the table")
    sh = sub.add_parser("show", help="summarise a finished run directory")
    sh.add_argument("run_dir")
    sh.add_argument("--json", action="store_true")
    p.commands = tuple(sub.choices)
    return p


def _list() -> None:
    from kinn import registry

    print("problems:")
    for name in registry.problem_names():
        prob = registry.get_problem(name)
        print(f"  {name:<24} forms: {', '.join(prob.forms):<24} {prob.description}")
    print("families:")
    for name in registry.family_names():
        try:
            fam = registry.get_family(name)
        except ImportError as e:
            print(f"  {name:<24} (unavailable: {e})")
            continue
        opts = ", ".join(f"{f.name}={_default(f)!r}" for f in dataclasses.fields(fam.Config))
        print(f"  {name:<24} forms: {', '.join(sorted(fam.forms)):<24} options: {opts}")


def _default(f):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _print_summary(s: dict) -> None:
    print(f"{s['problem']} | family {s['family']} | form {s['form']} | {s['params']} parameters | "
          f"{s['steps']} steps ({s['adam_steps']} Adam + {s['lbfgs_iters']} L-BFGS) | {s['wall_time']:.1f} s")
    print(f"stopped: {s['stop_reason']}")
    held_out = "test samples" if s["form"] == "operator" else "held-out points"
    for name, e in s["errors"].items():
        if e.get("rel_l2") is None:  # an inverse problem's unknown: its estimate and error
            print(f"  {name}: " + ", ".join(f"{k} {v:.6g}" for k, v in e.items() if v is not None))
            continue
        extra = "".join(f", {k} {v:.3e}" for k, v in e.items() if k not in ("rel_l2", "max") and v is not None)
        print(f"  {name}: relative L2 {e['rel_l2']:.3e}, max error {e['max']:.3e}{extra} ({held_out})")
    if s.get("residual_rms") is not None:
        print(f"  residual RMS {s['residual_rms']:.3e}")
    print(f"run directory: {s['run_dir']}")


def _config(path, settings) -> dict:
    """The --config file's table with the --set entries applied."""
    config: dict = {}
    if path:
        from kinn.run.config import read_toml

        config = read_toml(path)
    for keys, value in settings:
        node = config
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise KinnError(f"--set {'.'.join(keys)}: '{k}' is not a table")
        node[keys[-1]] = value
    return config


def _solve(a) -> None:
    from kinn.run.pipeline import solve

    config = _config(a.config, a.settings)
    if not a.problem and not a.resume:
        raise KinnError("name a problem to solve (see `kinn list`), or --resume RUN_DIR")
    result = solve(a.problem, a.family, a.form, config=config or None, resume=a.resume, steps=a.steps,
                   lbfgs=a.lbfgs, lr=a.lr, device=a.device, dtype=a.dtype, seed=a.seed, out=a.out,
                   derivatives=a.derivatives,
                   progress=False if a.json else None)
    code = 128 + result.history.signal if result.history.signal else 0
    if result.run_dir is None:  # a rank other than 0 of a torchrun run: rank 0 reports
        return code
    s = result.summary()
    print(json.dumps(s)) if a.json else _print_summary(s)
    if code:
        print(f"kinn: interrupted by {signal.Signals(result.history.signal).name}: {result.run_dir} holds the "
              f"state it stopped in; continue with kinn solve --resume {result.run_dir}", file=sys.stderr)
    return code


def _compare(a) -> None:
    from kinn.comparison.compare import compare

    families = [s.strip() for s in a.families.split(",")]
    models: dict = {}  # --set kan.grid=5 is the kan family's option; other keys are config entries
    for keys, value in a.settings:
        if keys[0] in families and len(keys) == 2:
            models.setdefault(keys[0], {})[keys[1]] = value
    config = _config(a.config, [(k, v) for k, v in a.settings if not (k[0] in families and len(k) == 2)])
    c = compare(a.problem, families, a.form, seeds=a.seeds, budget_steps=a.budget_steps,
                budget_seconds=a.budget_seconds, match=None if a.match == "none" else a.match, params=a.params,
                models=models, out=a.out, config=config, lbfgs=a.lbfgs, lr=a.lr, device=a.device, dtype=a.dtype,
                progress=False if a.json else None)
    print(json.dumps(c.to_dict())) if a.json else print(f"{c.table()}\n\ntable, figures and run directories: {c.out}")


def _show(a) -> None:
    from pathlib import Path

    from kinn.run.rundir import read_json

    failed = Path(a.run_dir) / "failed.json"
    if failed.is_file() and not (Path(a.run_dir) / "result.json").exists():
        raise KinnError(f"{a.run_dir} is a failed run: {read_json(failed)['error']}")
    s = read_json(Path(a.run_dir) / "result.json")
    print(json.dumps(s)) if a.json else _print_summary(s)


def _terminated(signum, frame):
    from kinn.run.interrupts import Interrupted

    raise Interrupted(signum)


def main(argv=None) -> int:
    """Run one command; the exit status: 0 done, 2 refused input, 128 + N stopped by signal N."""
    from kinn.run.interrupts import signum_of

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None  # SIGTERM like Ctrl-C
    try:
        a = parser().parse_args(argv)
        return {"list": lambda: _list(), "solve": lambda: _solve(a), "compare": lambda: _compare(a),
                "show": lambda: _show(a)}[a.command]() or 0
    except KinnError as e:
        print(f"kinn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"kinn: interrupted by {signal.Signals(signum_of(e)).name}", file=sys.stderr)
        return 128 + signum_of(e)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
