"""The `kinn` command line: list, solve, compare, show, score, new.

    kinn list
    kinn solve NAME [--family mlp] [--form strong] [--steps N] [--lbfgs N] [--lr LR] [--device D]
                    [--dtype float32|float64] [--seed S] [--out DIR] [--config FILE] [--set KEY=VALUE] [--json]
    kinn solve --resume RUN_DIR [--json]
    kinn compare NAME [--families mlp,kan,deepxde] [--form F] [--seeds N] [--budget-steps N | --budget-seconds S]
                      [--lbfgs N] [--match params|width|none] [--params N] [--lr LR] [--device D] [--dtype D]
                      [--out DIR] [--config FILE] [--set KEY=VALUE | FAMILY.OPTION=VALUE] [--json]
    kinn show RUN_DIR [--edges] [--json]
    kinn symbolic RUN_DIR [--library x,x^2,sin,...] [--tol T] [--json]
    kinn ntk NAME [--families mlp,kan] [--form F] [--steps 0,1000] [--points N] [--seed S] [--out DIR] [--json]
    kinn sweep NAME --sweep FAMILY.OPTION=V1,V2,... [--sweep ...] [--seeds N] [--steps N] [--lbfgs N] [--form F]
                    [--out DIR] [--set KEY=VALUE] [--json]
    kinn score RUN_DIR --reference FILE [--json]
    kinn new NAME [--out FILE]

NAME is a registered problem (the catalogue or an installed package's entry point) or a problem in your own
file, `path/to/file.py:NAME`. Mistakes (an unknown name, a bad number, a malformed file) print one line
`kinn: error: ...` and exit 2.
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
    s.add_argument("problem", nargs="?", help="a problem name (see `kinn list`) or path/to/file.py:NAME")
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
    s.add_argument("--json", action="store_true", help="print one JSON object (keys: docs/guide/cli.md) instead of a summary")
    c = sub.add_parser("compare", help="solve a problem with several solver families under equal budgets")
    c.add_argument("problem", help="a problem name (see `kinn list`) or path/to/file.py:NAME")
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
    sc = sub.add_parser("score", help="score a finished run against a reference computed elsewhere")
    sc.add_argument("run_dir")
    sc.add_argument("--reference", required=True, metavar="FILE",
                    help="reference data: .h5 (kinn layouts), .npz, .mat or a mesh file with point data")
    sc.add_argument("--json", action="store_true")
    nw = sub.add_parser("new", help="write a problem file to start from (solve it: kinn solve FILE.py:NAME)")
    nw.add_argument("name", help="the problem's name, a Python identifier")
    nw.add_argument("--out", help="the file to write (default NAME.py); an existing file is never overwritten")
    sh.add_argument("--edges", action="store_true",
                    help="a KAN run: draw every edge function (figures/edges.png) and score the edges (edges.json)")
    _analysis_parsers(sub)
    p.commands = tuple(sub.choices)
    return p


def _steps(text: str) -> list[int]:
    try:
        return [_count(t.strip()) for t in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be comma-separated step counts (0,1000), got '{text}'") from None


def _analysis_parsers(sub) -> None:
    """`symbolic`, `ntk` and `sweep`: looking inside trained KANs and the paper's analyses (kinn.analysis)."""
    from kinn.registry import form_kinds

    y = sub.add_parser("symbolic", help="a KAN run's closed-form formula, scored on held-out points")
    y.add_argument("run_dir")
    y.add_argument("--library", help="comma-separated candidates (default: all of kinn.analysis.symbolic.LIBRARY)")
    y.add_argument("--tol", type=float, default=1e-6, help="an edge takes the simplest candidate with R² >= 1 - tol")
    y.add_argument("--json", action="store_true", help="print symbolic.json instead of the formula")
    n = sub.add_parser("ntk", help="neural tangent kernel spectra of families, at initialisation and after training")
    n.add_argument("problem", help="a problem name (see `kinn list`)")
    n.add_argument("--families", "--solvers", dest="families", default="mlp,kan", help="comma-separated families")
    n.add_argument("--form", choices=form_kinds(), help="default: the problem's first form")
    n.add_argument("--steps", type=_steps, default=[0, 1000], help="step counts to take the kernel at (0,1000)")
    n.add_argument("--points", type=_count, default=100, help="points the kernel is taken at (default 100)")
    n.add_argument("--seed", type=_count, default=0)
    n.add_argument("--out", help="output folder (default runs/ntk-NAME-TIME)")
    n.add_argument("--json", action="store_true", help="print ntk.json instead of a summary")
    w = sub.add_parser("sweep", help="error against parameters over a family option's values (equal budgets)")
    w.add_argument("problem", help="a problem name (see `kinn list`)")
    w.add_argument("--sweep", dest="sweeps", action="append", required=True, metavar="FAMILY.OPTION=V1,V2,...",
                   help="e.g. --sweep kan.grid=3,5,10,20 --sweep mlp.widths=[16,16],[32,32]")
    w.add_argument("--seeds", type=_count, default=1, help="runs per value, seeds 0 .. N-1 (default 1)")
    w.add_argument("--steps", type=_count, help="Adam steps per run (default: the problem's)")
    w.add_argument("--lbfgs", type=_count, default=0, help="L-BFGS iterations per run (default 0)")
    w.add_argument("--form", choices=form_kinds(), help="default: the problem's first form")
    w.add_argument("--out", help="output folder (default runs/sweep-NAME-TIME)")
    w.add_argument("--set", dest="settings", action="append", type=_setting, default=[], metavar="KEY=VALUE",
                   help="a config entry for every run (--set points.n_interior=4000)")
    w.add_argument("--json", action="store_true", help="print sweep.json instead of the table")


def _loaded(sources: dict, get):
    """(name, object, origin note) of each registry entry that loads; one that does not is listed with why."""
    from kinn import registry

    for name, where in sources.items():
        origin = "" if where == registry.CATALOGUE else f"  [from {where}]"
        try:
            yield name, get(name), origin
        except (ImportError, KinnError) as e:
            print(f"  {name:<24} (unavailable: {e}){origin}")


def _list() -> None:
    from kinn import registry

    print("problems (also: path/to/file.py:NAME, a problem in your own file; `kinn new NAME` writes one):")
    for name, prob, origin in _loaded(registry.problem_sources(), registry.get_problem):
        kind = "inverse problem  " if prob.inverse_problem else ""
        print(f"  {name:<24} forms: {', '.join(prob.forms):<24} {kind}{prob.description}{origin}")
    print("forms: strong (PINN), energy (Deep Energy Method), inverse (boundary integral equation, BINN), "
          "operator, fit; an inverse problem (unknowns fitted to data) is solved in its strong or energy form")
    print("families:")
    for name, fam, origin in _loaded(registry.family_sources(), registry.get_family):
        opts = ", ".join(f"{f.name}={_default(f)!r}" for f in dataclasses.fields(fam.Config))
        forms = ", ".join(sorted(fam.forms)) if fam.forms is not None else "any"
        print(f"  {name:<24} forms: {forms:<24} options: {opts}{origin}")


def _default(f):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _print_summary(s: dict) -> None:
    print(f"{s['problem']} | family {s['family']} | form {s['form']} | {s['params']} parameters | "
          f"{s['steps']} steps ({s['adam_steps']} Adam + {s['lbfgs_iters']} L-BFGS) | {s['wall_time']:.1f} s")
    print(f"stopped: {s['stop_reason']}")
    held_out = "test samples" if s["form"] == "operator" else "held-out points"
    if "reference" in s and s["reference"] is None:
        print(f"  no reference given: errors not measured (attach one: kinn score {s['run_dir']} --reference FILE)")
    for name, e in s["errors"].items():
        if all(v is None for v in e.values()):  # a field of a problem without a reference
            continue
        if e.get("rel_l2") is None:  # an inverse problem's unknown: its estimate and error
            print(f"  {name}: " + ", ".join(f"{k} {v:.6g}" for k, v in e.items() if v is not None))
            continue
        extra = "".join(f", {k} {v:.3e}" for k, v in e.items() if k not in ("rel_l2", "max") and v is not None)
        print(f"  {name}: relative L2 {e['rel_l2']:.3e}, max error {e['max']:.3e}{extra} ({held_out})")
    if s.get("residual_rms") is not None:
        print(f"  residual RMS {s['residual_rms']:.3e} ({held_out})")
    if s.get("checks"):
        print("  checks: " + ", ".join(f"{k} {v:.3e}" for k, v in s["checks"].items())
              + " (condition misfits are RMS on held-out boundary points; energy: the potential)")
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
    if a.edges:
        return _edges(a)
    s = read_json(Path(a.run_dir) / "result.json")
    print(json.dumps(s)) if a.json else _print_summary(s)


def _score(a) -> None:
    from kinn.run.scoring import score

    s = score(a.run_dir, a.reference)
    print(json.dumps(s)) if a.json else _print_summary(s)


def _new(a) -> None:
    from kinn.pde.template import write_template

    path = write_template(a.name, a.out)
    print(f"wrote {path}; solve it with: kinn solve {path}:{a.name}")


def _edges(a) -> None:
    from kinn.analysis.runs import edges_of_run

    report = edges_of_run(a.run_dir)
    if a.json:
        return print(json.dumps(report))
    for piece, scores in report["importance"].items():
        for l, layer in enumerate(scores["edges"]):
            weak = sum(e < 1e-2 for row in layer for e in row)
            print(f"{piece} layer {l}: {len(layer)} -> {len(layer[0])}, {weak} edge(s) below 1e-2 of the strongest")
    print("figures: " + ", ".join(report["figures"]))


def _symbolic(a) -> None:
    from kinn.analysis import symbolic
    from kinn.analysis.runs import formula_of_run

    library = [t.strip() for t in a.library.split(",")] if a.library else symbolic.DEFAULT_LIBRARY
    report = formula_of_run(a.run_dir, library, a.tol)
    if a.json:
        return print(json.dumps(report))
    for piece, p in report["pieces"].items():
        for name, o in p["outputs"].items():
            label = f"{name} ({piece})" if piece != "net" else name
            arrow = f"{label} = transform(x, N), N" if p["transform"] else label
            print(f"{arrow} = {o['text']}\n  LaTeX: {o['latex']}")
    for name in report["errors"]["formula"]:
        if name.startswith("rel_l2/"):
            print(f"{name.split('/', 1)[1]}: relative L2 of the formula {report['errors']['formula'][name]:.3e}, "
                  f"of the network {report['errors']['network'][name]:.3e} ({report['eval_points']} held-out points)")
    if report["nonfinite"]:
        print(f"the formula is not finite at {report['nonfinite']} of them (left out of its error): a fitted "
              "sqrt or log leaves its domain there; try --library without them")


def _ntk(a) -> None:
    import time

    from kinn.analysis.bias import study

    families = [s.strip() for s in a.families.split(",")]
    out = a.out or f"runs/ntk-{a.problem}-{time.strftime('%Y%m%d-%H%M%S')}"
    report = study(a.problem, families, a.steps, a.form, a.points, a.seed, out)
    if a.json:
        return print(json.dumps(report))
    for r in report["runs"]:
        eig = r["eigenvalues"][r["kernel"]]
        tail = eig[min(9, len(eig) - 1)] / eig[0]
        errors = ", ".join(f"{k} {v:.3e}" for k, v in r["rel_l2"].items())
        print(f"{r['family']:<6} step {r['step']:<6} {r['kernel']} kernel: lambda_1 {eig[0]:.3e}, "
              f"lambda_10/lambda_1 {tail:.3e}; {errors}")
    print("figures: " + ", ".join(report["figures"]))


def _sweep(a) -> None:
    from kinn.comparison.sweep import parse, sweep

    sweeps = {}
    for text in a.sweeps:
        family, option, values = parse(text)
        if family in sweeps:
            raise KinnError(f"--sweep: family '{family}' is swept twice; sweep one option per family")
        sweeps[family] = (option, values)
    report = sweep(a.problem, sweeps, a.seeds, a.steps, a.lbfgs, a.form, a.out, _config(None, a.settings) or None)
    if a.json:
        return print(json.dumps(report))
    for r in report["rows"]:
        errors = ", ".join(f"{k.split('/', 1)[1]} {v:.3e}" for k, v in r["errors"].items())
        print(f"{r['family']:<5} {r['option']}={r['value']!s:<12} seed {r['seed']}  {r['params']:>7} parameters  "
              f"{errors}")
    print(f"figure: {report['figure']}")


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
                "show": lambda: _show(a), "score": lambda: _score(a), "new": lambda: _new(a),
                "symbolic": lambda: _symbolic(a), "ntk": lambda: _ntk(a), "sweep": lambda: _sweep(a)}[a.command]() or 0
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
