"""Run configuration: dataclasses, TOML in and out, validation with errors that name what is allowed.

A run is described by one `RunConfig`. Settings are merged in this order, later wins: the dataclass
defaults, the problem's recommended `defaults`, a TOML config file, then command-line flags or keyword
arguments. The resolved config is written to each run directory as `config.toml`, which re-runs it:

    problem = "poisson2d"
    family = "mlp"        (older config files say `solver`: still read)
    form = "strong"
    [train]   steps, lr, schedule, lbfgs, seed, device, dtype, ... (TrainConfig)
    [points]  n_interior, n_boundary, n_initial, n_eval, sampler   (PointsConfig)
    [model]   the family's own options (see `kinn list`)
"""
from __future__ import annotations

import dataclasses
import math
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kinn.errors import KinnError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# the allowed names of every setting that takes one of a list, defined once: the modules that act on a
# setting (geometry, quadrature, the model wrappers, the CLI) import these
DTYPES = ("float32", "float64")
SCHEDULES = ("none", "cosine", "step", "exponential")
ON_NONFINITE = ("stop", "rollback")
DERIVATIVES = ("auto", "jet", "autograd")  # how residuals get derivatives (kinn.models.field)
SAMPLERS = ("pseudo", "LHS", "Halton", "Hammersley", "Sobol", "lattice")  # lattice: regular nodes
BOX_RULES = ("monte_carlo", "trapezoid", "simpson", "gauss")  # kinn.forms.quadrature, on boxes and edges
TRIANGLE_DEGREES = (1, 2, 4, 5)  # triangleK: a rule of degree K on triangles
QUADRATURES = BOX_RULES + tuple(f"triangle{k}" for k in TRIANGLE_DEGREES)
ADAPTIVE = ("none", "rar", "rar-d", "rad")  # residual-based adaptive sampling (kinn.forms.adaptive)
WEIGHTINGS = ("none", "rba", "gradnorm")  # adaptive loss weights (kinn.run.weighting)


@dataclass
class TrainConfig:
    """The training loop's settings (the loop itself is `kinn.run.trainer.fit`)."""

    steps: int = 5000                 # Adam steps
    lr: float = 1e-3
    schedule: str = "none"            # learning-rate schedule: none | cosine | step | exponential
    gamma: float = 0.5                # decay factor for step (per step_size) and exponential (over all steps)
    step_size: int = 1000
    lbfgs: int = 0                    # L-BFGS iterations after Adam (strong-Wolfe line search)
    lbfgs_lr: float = 1.0
    lbfgs_history: int = 50
    lbfgs_tolerance_grad: float = 1e-9
    lbfgs_tolerance_change: float = 1e-12
    resample_every: int = 0           # draw new collocation points every N Adam steps (0: never)
    eval_every: int = 500             # evaluate the held-out error every N steps
    log_every: int = 50               # record loss terms every N steps
    target_error: float = 0.0         # stop once the largest held-out relative L2 error is at or below this
    time_limit: float = 0.0           # stop once this many seconds were spent optimising (0: no limit)
    seed: int = 0
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    dtype: str = "float32"            # float32 | float64
    checkpoint_every: int = 0         # also write a checkpoint every N steps (0: by time only)
    checkpoint_seconds: float = 300.0  # write a checkpoint once this many seconds passed since the last (0: never)
    weights: dict = field(default_factory=dict)  # loss-term weights by term name or prefix ("bc": 10)
    batch_size: int = 0               # operator runs: training samples per Adam step (0: all of them)
    weight_decay: float = 0.0         # Adam's L2 penalty on the parameters
    progress: bool = True             # show a progress bar on a terminal
    dist_timeout: float = 600.0       # torchrun runs: seconds a rank waits for the others before failing
    on_nonfinite: str = "stop"        # stop | rollback (to the last finite log step, halving the rate; Adam only)
    # adaptive loss weights (kinn.run.weighting), updated in the Adam stage and frozen in L-BFGS
    weighting: str = "none"           # none | rba (per-point residual attention) | gradnorm (term weights)
    rba_gamma: float = 0.999          # RBA: λ_i <- gamma λ_i + eta |r_i| / max |r|
    rba_eta: float = 0.01
    gradnorm_alpha: float = 0.1       # gradnorm: λ_k <- (1 - alpha) λ_k + alpha max|∇L_pde| / mean|∇L_k|
    gradnorm_every: int = 10          # gradnorm: Adam steps between updates
    causal: float = 0.0               # causal weighting's epsilon (time-dependent strong forms; 0: off)
    causal_slices: int = 16           # causal weighting: time slices

    def __post_init__(self):
        for f in dataclasses.fields(self):  # nan and inf pass every comparison below: refuse them first
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise KinnError(f"train.{f.name} must be a finite number, got {value}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise KinnError(f"train.seed must be an integer in 0 .. 2**63 - 1, got {self.seed!r}")
        if self.weight_decay < 0:
            raise KinnError(f"train.weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("steps", "lbfgs", "batch_size", "resample_every", "eval_every", "log_every", "checkpoint_every",
                     "step_size"):
            _nonneg(name, getattr(self, name))
        if self.time_limit < 0 or self.target_error < 0 or self.checkpoint_seconds < 0:
            raise KinnError("train.time_limit, train.target_error and train.checkpoint_seconds must be >= 0")
        if not self.dist_timeout > 0:
            raise KinnError(f"train.dist_timeout must be > 0 seconds, got {self.dist_timeout}")
        for name in ("lr", "lbfgs_lr", "gamma"):
            if not getattr(self, name) > 0:
                raise KinnError(f"train.{name} must be > 0, got {getattr(self, name)}")
        _choice("train.schedule", self.schedule, SCHEDULES)
        _choice("train.dtype", self.dtype, DTYPES)
        _choice("train.on_nonfinite", self.on_nonfinite, ON_NONFINITE)
        _choice("train.weighting", self.weighting, WEIGHTINGS)
        if not 0 < self.rba_gamma < 1 or not self.rba_eta > 0:
            raise KinnError(f"train.rba_gamma must be in (0, 1) and train.rba_eta > 0, got {self.rba_gamma}, {self.rba_eta}")
        if not 0 < self.gradnorm_alpha <= 1:
            raise KinnError(f"train.gradnorm_alpha must be in (0, 1], got {self.gradnorm_alpha}")
        if self.causal < 0:
            raise KinnError(f"train.causal (epsilon) must be >= 0, got {self.causal}")
        for name in ("gradnorm_every", "causal_slices"):
            _positive(f"train.{name}", getattr(self, name))
        if self.lbfgs_history < 1:
            raise KinnError(f"train.lbfgs_history must be >= 1, got {self.lbfgs_history}")
        for k, w in self.weights.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w < math.inf:
                raise KinnError(f"train.weights.{k} must be a number >= 0, got {w!r}")


@dataclass
class PointsConfig:
    """How many points each point set gets; training and evaluation sets are drawn independently."""

    n_interior: int = 2000
    n_boundary: int = 400
    n_initial: int = 400
    n_eval: int = 10000
    sampler: str = "pseudo"           # pseudo | LHS | Halton | Hammersley | Sobol (deepxde) | lattice (regular nodes)
    quadrature: str = "monte_carlo"   # energy form: monte_carlo | trapezoid | simpson | gauss | triangle1|2|4|5
    #                                   (kinn.forms.quadrature; triangleK: degree K on the problem's mesh or a generated one)
    jitter: bool = False              # energy form: a fresh stratified draw of the rule's cells every Adam step
    #                                   and L-BFGS chunk (kinn.forms.quadrature.stratified)
    stride: int = 1                   # operator runs: train on every stride-th node of the dataset's grid
    # residual-based adaptive sampling of the interior collocation points (kinn.forms.adaptive)
    adaptive: str = "none"            # none | rar (add the largest residuals) | rar-d (add, by density) | rad (redraw)
    adapt_every: int = 1000           # Adam steps between adaptations
    adapt_points: int = 100           # rar, rar-d: points added per adaptation (rad redraws all n_interior)
    adapt_pool: int = 10000           # candidate points drawn uniformly for each adaptation
    adapt_k: float = 1.0              # rar-d, rad: density ∝ |r|^k / mean |r|^k + c (Wu et al. 2023)
    adapt_c: float = 1.0

    def __post_init__(self):
        for name in ("n_interior", "n_boundary", "n_initial", "n_eval"):
            _nonneg(f"points.{name}", getattr(self, name))
        _positive("points.stride", self.stride)
        if self.n_eval < 1:
            raise KinnError("points.n_eval must be >= 1")
        if self.sampler == "grid":
            raise KinnError("points.sampler 'grid' is now called 'lattice' (regular nodes; in kinn a 'grid' is a "
                            "KAN's spline grid)")
        _choice("points.sampler", self.sampler, SAMPLERS)
        _choice("points.quadrature", self.quadrature, QUADRATURES)
        _choice("points.adaptive", self.adaptive, ADAPTIVE)
        for name in ("adapt_every", "adapt_points", "adapt_pool"):
            _positive(f"points.{name}", getattr(self, name))
        if not (math.isfinite(self.adapt_k) and math.isfinite(self.adapt_c)) or self.adapt_k < 0 or self.adapt_c < 0:
            raise KinnError(f"points.adapt_k and points.adapt_c must be finite and >= 0, got {self.adapt_k}, {self.adapt_c}")


@dataclass
class RunConfig:
    problem: str
    family: str = "mlp"
    form: str = ""                    # "" means the problem's first declared form
    out: str = "runs"                 # parent folder of run directories
    name: str = ""                    # run directory name ("" : problem-solver-form-timestamp)
    derivatives: str = "auto"         # auto | jet | autograd: how residuals get derivatives (kinn.models.field)
    train: TrainConfig = field(default_factory=TrainConfig)
    points: PointsConfig = field(default_factory=PointsConfig)
    model: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _nonneg(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise KinnError(f"{name} must be a non-negative integer, got {v!r}")


def _positive(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise KinnError(f"{name} must be a positive integer, got {v!r}")


def _choice(name, v, allowed):
    if v not in allowed:
        raise KinnError(f"{name} must be one of {', '.join(allowed)}; got {v!r}")


def _check_type(where: str, value, tp) -> Any:
    """Check a TOML value against a dataclass field's type; ints are accepted where floats are."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for t in typing.get_args(tp):
            try:
                return _check_type(where, value, t)
            except KinnError:
                pass
        raise KinnError(f"{where} has the wrong type: {type(value).__name__} ({value!r})")
    base = origin or tp
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is type(None) and value is None:
        return None
    if base in (int, float) and isinstance(value, bool):
        raise KinnError(f"{where} must be {base.__name__}, got a boolean")
    if isinstance(base, type) and not isinstance(value, base):
        raise KinnError(f"{where} must be {base.__name__}, got {type(value).__name__} ({value!r})")
    return value


def from_dict(cls, data: dict, where: str = ""):
    """Build dataclass `cls` from a dict, naming unknown keys (with the allowed ones) and wrong types."""
    if not isinstance(data, dict):
        raise KinnError(f"{where or 'config'} must be a table, got {type(data).__name__}")
    if cls is RunConfig and "solver" in data:  # the family's name before it had one word
        data = {("family" if k == "solver" else k): v for k, v in data.items()}
    hints = typing.get_type_hints(cls)
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise KinnError(f"unknown key(s) {', '.join(where + k for k in unknown)}; "
                        f"allowed{' in [' + where[:-1] + ']' if where else ''}: {', '.join(sorted(allowed))}")
    kwargs = {}
    for k, v in data.items():
        tp = hints[k]
        if dataclasses.is_dataclass(tp):
            kwargs[k] = from_dict(tp, v, f"{where}{k}.")
        else:
            kwargs[k] = _check_type(where + k, v, tp)
    return cls(**kwargs)


def merge(base: dict, over: dict) -> dict:
    """Nested dict merge, `over` wins."""
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "weights" else v
    return out


def read_toml(path) -> dict:
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise KinnError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise KinnError(f"config file {path} is a folder; give a TOML file") from None
    except OSError as e:
        raise KinnError(f"config file {path} is unreadable: {e.strerror}") from None
    except UnicodeDecodeError:
        raise KinnError(f"config file {path} is not UTF-8 text; give a TOML file") from None
    except tomllib.TOMLDecodeError as e:
        raise KinnError(f"config file {path} is not valid TOML: {e}") from None


def to_toml(cfg: RunConfig) -> str:
    import tomli_w

    return tomli_w.dumps(cfg.to_dict())
