"""`BoundaryIntegralForm`: KINN's inverse form — the boundary integral equation solved by a network (BINN).

The network N(x) is read on the boundary only. Where a boundary value is prescribed, the datum replaces
it; where it is unknown, the network supplies it: u = N, or the flux q = ∂N/∂n (elasticity: the traction
t = σ(∇N)·n) from its derivatives. The regularised, rigid-body-subtracted boundary integral equation
(`kinn.boundary.bie_operator`), collocated at several points per panel, gives residuals R = A u − B q; the
loss is their mean square. No boundary-condition term: the conditions hold exactly by substitution. The
interior solution is not the network: it is the representation formula (`kinn.boundary.representation`)
with the trained boundary data, which `predict`, the scorer and the run directory use.

    form = BoundaryIntegralForm(box((0, 0), (2, 1), 10), Laplace(), flux=lambda u, n: ops.normal(u, n),
                                given={"bottom": Value(g), "right": Value(g), "top": Value(g), "left": Value(g)})

A source, −Δu = f (Poisson), is carried by `source=`: a `ParticularSolution(u_p)` (the form then solves for
the harmonic u − u_p) or a `DomainIntegral(f)` (the domain term ∫Ω u* f by a triangle quadrature), see
`kinn.forms.source`.

"Inverse" is the boundary element method's name for this statement of the PDE (all derivatives moved onto
the fundamental solution); it has nothing to do with inverse problems (`kinn.forms.inverse_problem`).
"""
from __future__ import annotations

from abc import ABC
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, ClassVar, Mapping

import numpy as np
import torch

from kinn.boundary import Boundary, Field, Kernel, bie_operator, plot, representation
from kinn.boundary import nodes as boundary_nodes
from kinn.errors import KinnError
from kinn.forms.base import Data, Env, Form, Scorer, write_summary
from kinn.forms.points import at_points, columns
from kinn.forms.source import Source, values_of
from kinn.pde import geometry
from kinn.run import evaluate, figures, rundir

NEAR = (1e-3, 1e-2)  # evaluation points this close to Γ (× the boundary's size): the representation's hard case
DURING = 1000        # points scored while training (the final score takes all)


@dataclass(frozen=True)
class Datum(ABC):
    """A prescribed boundary datum of one component: a number, or g(x) of float64 points (N, 2) -> (N,)
    or (N, 1) (a torch function, like a problem's exact solution)."""

    g: float | Callable = 0.0
    given: ClassVar[str]

    def __post_init__(self):
        number = isinstance(self.g, (int, float, np.number)) and not isinstance(self.g, bool)
        if not (callable(self.g) or number and np.isfinite(self.g)):
            raise KinnError(f"{type(self).__name__}(g): g is a finite number or a function of points (N, 2), "
                            f"got {self.g!r}")

    def at(self, x: np.ndarray, where: str = "") -> np.ndarray:
        """(N,) the datum at points x (N, 2); `where` (" on boundary tag 'top'") says where it is given, in the
        one line that refuses a g giving another shape or a value that is not finite."""
        if not callable(self.g):
            return np.full(len(x), float(self.g))
        return values_of(self.g, x, 1, f"{type(self).__name__}(g){where}")[:, 0]


@dataclass(frozen=True)
class Value(Datum):
    """A prescribed value: u = g (Laplace), u_i = g (elasticity); the flux there comes from the network."""

    given: ClassVar[str] = "value"


@dataclass(frozen=True)
class Flux(Datum):
    """A prescribed flux ∂u/∂n = g (Laplace) or traction t_i = g (elasticity); the value comes from the network."""

    given: ClassVar[str] = "flux"


@dataclass(frozen=True)
class System:
    """The BIE with the data substituted, in float64: R = r0 + A_free @ u_free − B_free @ q_free, u_free
    the network's values where no value is given and q_free its flux where no flux is given (interleaved
    node·c + component). `given_u` (M, c) says which values are data; u0, q0 (M, c) hold the data. A
    source's part: the full residual is A u − B q − source (S·c,), with the shift (u_s, q_s) (M, c) taken
    off the boundary data first (see `kinn.forms.source`; zeros without a source)."""

    r0: np.ndarray
    A_free: np.ndarray
    B_free: np.ndarray
    given_u: np.ndarray
    u0: np.ndarray
    q0: np.ndarray
    A: np.ndarray
    B: np.ndarray
    source: np.ndarray
    u_shift: np.ndarray
    q_shift: np.ndarray


@dataclass(frozen=True, eq=False)
class BoundaryIntegralForm(Form):
    """The inverse (boundary-integral, BINN) form; see the module docstring.

    boundary: `kinn.boundary.Boundary`, closed loops of panels (outer counter-clockwise, holes clockwise).
    kernel:   the fundamental solution of the operator, `Laplace()` or `Kelvin(mu, nu, plane)`.
    flux:     flux(u, n) -> (N, c), the flux (traction) of the field handle u on the normals n, written
              with `kinn.pde.ops` / `kinn.pde.mechanics`; it must be the one the kernel's double layer
              assumes (∂u/∂n for Laplace, σ(u)·n with the same μ, ν and plane for Kelvin).
    given:    {panel tag: Datum, or a tuple of one Datum per component}: every tag needs one.
    n:        Gauss–Legendre nodes per panel, which carry the boundary data.
    sources:  collocation points per panel (k equal parts' midpoints) or their parameters in [0, 1]; the
              default, as many as nodes, makes the BIE determine the nodal unknowns (KINN used one per
              panel, which leaves its ~1,000 parameters under-determined).
    derived:  {name: fn(value (P, c), derived (P, m)) -> (P,)}: quantities scored besides the fields from the
              representation's value and derived field (Laplace ∇u; Kelvin σ_xx, σ_yy, σ_xy), named as
              the problem's `derived` (their references come from there).
    source:   a `kinn.forms.source.Source` for −Δu = f (a body force), or None (no source).
    by_length: weigh each source's residual by its panel's length (over the mean), so that the loss is the
              mean square of R along Γ rather than over the sources: on panels graded toward a singularity
              the many small ones would otherwise dominate the loss (default False: every source counts once).
    """

    boundary: Boundary
    kernel: Kernel
    flux: Callable
    given: Mapping[str, Datum | tuple] = field(default_factory=dict)
    n: int = 10
    sources: int | tuple = 10
    derived: Mapping[str, Callable] = field(default_factory=dict)
    source: Source | None = None
    by_length: bool = False
    kind: ClassVar[str] = "inverse"
    order: ClassVar[int] = 1
    pointwise_only: ClassVar[str] = ("it reads the network (and its flux) at boundary points anywhere on the panels, "
                                     "and a lattice family has values at its own lattice's nodes only")

    def __post_init__(self):
        if not isinstance(self.boundary, Boundary):
            raise KinnError(f"the inverse form needs a kinn.boundary.Boundary, got {type(self.boundary).__name__}")
        if isinstance(self.kernel, type) and issubclass(self.kernel, Kernel):
            raise KinnError(f"the inverse form's kernel is the class {self.kernel.__name__}, not an instance; give "
                            f"one: {self.kernel.__name__}() (Kelvin(mu, nu, plane) for elasticity)")
        if not isinstance(self.kernel, Kernel):
            raise KinnError(f"the inverse form needs a fundamental solution (kinn.boundary.Laplace or Kelvin), got "
                            f"{type(self.kernel).__name__}: only operators with one have a boundary integral form")
        if not callable(self.flux):
            raise KinnError(f"the inverse form's flux must be a function flux(u, n) -> (N, c), got "
                            f"{type(self.flux).__name__}")
        missing = [t for t in self.boundary.tags if t not in self.given]
        if missing:
            raise KinnError(f"the inverse form has no boundary condition on panel tag(s) {', '.join(map(repr, missing))};"
                            f" give one in given= for every tag ({', '.join(map(repr, self.boundary.tags))})")
        stray = [t for t in self.given if t not in self.boundary.tags]
        if stray:
            raise KinnError(f"the inverse form's given= names tag(s) {', '.join(map(repr, stray))} that no panel has; "
                            f"tags: {', '.join(map(repr, self.boundary.tags))}")
        for tag in self.given:
            self.per_component(tag)
        if self.source is not None:
            if not isinstance(self.source, Source):
                raise KinnError(f"the inverse form's source must be a ParticularSolution or DomainIntegral "
                                f"(kinn.forms.source), got {type(self.source).__name__}")
            self.source.check(self.kernel)

    def per_component(self, tag: str) -> tuple:
        """The tag's data, one Datum per component."""
        d, c = self.given[tag], self.kernel.components
        d = (d,) if isinstance(d, Datum) else tuple(d)
        if len(d) != c or not all(isinstance(x, Datum) for x in d):
            got = ", ".join(type(x).__name__ for x in d) or "none"
            raise KinnError(f"boundary tag '{tag}': give {c} data (Value or Flux), one per component, "
                            f"got {len(d)}: {got}")
        return d

    def conditions(self) -> tuple:
        return ()

    def weights(self) -> dict[str, float]:
        return {}

    @cached_property
    def system(self) -> System:
        """The BIE operator and the data, assembled once in float64 (cast to the run's dtype per run)."""
        op = bie_operator(self.boundary, self.kernel, self.n, self.sources)
        nd, c = op.nodes, self.kernel.components
        given_u, u0, q0 = np.zeros((len(nd.points), c), bool), np.zeros((len(nd.points), c)), np.zeros((len(nd.points), c))
        for p, panel in enumerate(self.boundary.panels):
            rows = slice(p * self.n, (p + 1) * self.n)
            for j, d in enumerate(self.per_component(panel.tag)):
                target = u0 if d.given == "value" else q0
                target[rows, j] = d.at(nd.points[rows], f" on boundary tag '{panel.tag}'")
                given_u[rows, j] = d.given == "value"
        gu = given_u.ravel()
        us, qs, source = np.zeros((len(nd.points), c)), np.zeros((len(nd.points), c)), np.zeros(len(op.A))
        if self.source is not None:
            us, qs = self.source.shift(nd, c)
            source = (op.A @ us.ravel() - op.B @ qs.ravel()
                      + self.source.bie(self.boundary, self.kernel, op.points).ravel())
        r0 = op.A[:, gu] @ u0.ravel()[gu] - op.B[:, ~gu] @ q0.ravel()[~gu] - source
        return System(r0, op.A[:, ~gu], op.B[:, gu], given_u, u0, q0, op.A, op.B, source, us, qs)

    @cached_property
    def row_weights(self) -> np.ndarray:
        """(S·c,) the weight of each residual in the loss: its panel's length over the mean (`by_length`), or 1."""
        lengths = np.array([p.length for p in self.boundary.panels])
        w = np.repeat(lengths, len(self.system.r0) // len(lengths))  # rows: panel by panel, source, component
        return w / w.mean() if self.by_length else np.ones_like(w)

    @cached_property
    def nodes(self):
        """The Gauss–Legendre nodes carrying the boundary data (`kinn.boundary.nodes`)."""
        return boundary_nodes(self.boundary, self.n)

    def build(self, problem, family, cfg):
        from kinn.models.field import FieldModel

        if problem.n_space != 2 or problem.time_dependent:
            raise KinnError(f"problem '{problem.name}': the inverse form is for steady 2-D problems")
        if len(problem.fields) != self.kernel.components:
            raise KinnError(f"problem '{problem.name}' has {len(problem.fields)} field(s); the inverse form's kernel "
                            f"{type(self.kernel).__name__} has {self.kernel.components}")
        options = family.config(cfg.model)
        family.check(problem, cfg.form, options)
        net = family.build(2, self.kernel.components, options)
        pts = np.concatenate([p.point(np.linspace(0, 1, 9)) for p in self.boundary.panels])
        return FieldModel(net, pts.min(0), pts.max(0), None, cfg.derivatives)  # inputs: Γ's box -> [-1, 1]²

    def data(self, problem, model, cfg, env: Env, resume: dict | None = None) -> BoundaryNodes:
        return BoundaryNodes(self, env)

    def boundary_terms(self, model, problem, x: torch.Tensor, normals: torch.Tensor):
        """(u, q) (M, c) of the model at the nodes x: the network's values and flux (no data substituted)."""
        def both(u, x):
            return columns(u.values), columns(self.flux(u, normals))

        return at_points(model, problem, x, both)

    def residual(self, model, problem, batch, free_only: bool = True) -> torch.Tensor:
        """R (S·c,) of the model's boundary data: with the prescribed data substituted (free_only), or of
        the model's own values and fluxes everywhere (to check an exact solution)."""
        u, q = self.boundary_terms(model, problem, batch["nodes"], batch["normals"])
        u, q = u.reshape(-1), q.reshape(-1)
        if not free_only:
            return batch["A"] @ u - batch["B"] @ q - batch["source"]
        return batch["r0"] + batch["A_free"] @ u[batch["free_u"]] - batch["B_free"] @ q[batch["free_q"]]

    def loss(self, model, problem, batch, weights) -> dict[str, torch.Tensor]:
        return {"bie": (batch["weights"] * self.residual(model, problem, batch).square()).mean()}

    def boundary_data(self, model, problem, env: Env) -> tuple[np.ndarray, np.ndarray]:
        """(u, q) float64 (M, c) at the nodes: the data where given, the trained network elsewhere."""
        nd, s = self.nodes, self.system
        x = torch.as_tensor(nd.points, dtype=env.dtype, device=env.device)
        normals = torch.as_tensor(nd.normals, dtype=env.dtype, device=env.device)
        u, q = (t.detach().double().cpu().numpy() for t in self.boundary_terms(model, problem, x, normals))
        return np.where(s.given_u, s.u0, u), np.where(s.given_u, q, s.q0)

    def direct(self) -> tuple[np.ndarray, np.ndarray]:
        """(u, q) float64 (M, c) at the nodes from the BIE solved directly (least squares in float64): the
        boundary element solution, the best any network can do on these panels (a check, and a floor)."""
        s = self.system
        K = np.hstack([s.A_free, -s.B_free])
        # square with as many sources as nodes: LU; else least squares (SVD, far slower)
        z = np.linalg.solve(K, -s.r0) if K.shape[0] == K.shape[1] else np.linalg.lstsq(K, -s.r0, rcond=None)[0]
        u, q, gu = s.u0.ravel().copy(), s.q0.ravel().copy(), s.given_u.ravel()
        u[~gu], q[gu] = z[: (~gu).sum()], z[(~gu).sum():]
        return u.reshape(s.u0.shape), q.reshape(s.q0.shape)

    def offset(self, x: np.ndarray, derived: bool = True) -> Field:
        """The source's part of the interior field at x (P, 2) (zeros without a source): a constant of
        the points, which the scorer computes once; its derived part NaN where not `derived`."""
        if self.source is None:
            return Field(np.zeros((len(x), self.kernel.components)), np.zeros((len(x), len(self.kernel.derived))))
        return self.source.interior(self.boundary, self.kernel, x, derived)

    def interior(self, rep, u: np.ndarray, q: np.ndarray, offset: Field) -> Field:
        """The interior field of the representation `rep` from the boundary data (u, q) (M, c), with the
        source's shift taken off and its `offset` at rep's points added."""
        s = self.system
        f = rep(u - s.u_shift, q - s.q_shift)
        return Field(f.value + offset.value, f.derived + offset.derived)

    def predict(self, model, problem, x: np.ndarray, env: Env) -> np.ndarray:
        """The interior fields at x (N, 2) by the representation formula; points outside are refused."""
        rep = representation(self.boundary, self.kernel, x, n=self.n)
        return self.interior(rep, *self.boundary_data(model, problem, env), self.offset(rep.points, derived=False)).value

    def eval_points(self, n: int, seed: int) -> np.ndarray:
        """n held-out points inside Γ: 90% uniform, 10% at distances NEAR × size inward of the boundary."""
        rng = np.random.default_rng(seed)
        b, n_near = self.boundary, max(n // 10, 1)
        pts = np.concatenate([p.point(np.linspace(0, 1, 9)) for p in b.panels])
        lo, hi = pts.min(0), pts.max(0)
        inside = np.zeros((0, 2))
        while len(inside) < n - n_near:
            x = lo + (hi - lo) * rng.random((2 * n, 2))
            inside = np.concatenate([inside, x[b.contains(x) & (b.distance(x) > NEAR[1] * b.size)]])
        near = np.zeros((0, 2))
        lengths = np.array([p.length for p in b.panels])
        while len(near) < n_near:
            k = rng.choice(len(b.panels), 2 * n_near, p=lengths / lengths.sum())
            t = rng.uniform(0.05, 0.95, len(k))
            base = np.concatenate([b.panels[i].point(ti) for i, ti in zip(k, t)])
            normal = np.concatenate([b.panels[i].normal(ti) for i, ti in zip(k, t)])
            d = b.size * 10 ** rng.uniform(np.log10(NEAR[0]), np.log10(NEAR[1]), (len(k), 1))
            x = base - d * normal
            near = np.concatenate([near, x[b.contains(x) & (b.distance(x) > 0.5 * NEAR[0] * b.size)]])
        return np.concatenate([inside[: n - n_near], near[:n_near]])

    def scorer(self, problem, model, cfg, env: Env, data: Data | None = None) -> BoundaryScorer:
        return BoundaryScorer(self, problem, model, cfg, env)


class BoundaryNodes(Data):
    """The fixed training data of the inverse form: the boundary nodes and the assembled BIE, in the run's
    dtype (assembled in float64 first: the kernels' sums would lose digits in float32)."""

    def __init__(self, form: BoundaryIntegralForm, env: Env):
        s, nd = form.system, form.nodes
        gu = s.given_u.ravel()
        self.batch = {**env.tensors({"nodes": nd.points, "normals": nd.normals, "r0": s.r0, "A_free": s.A_free,
                                     "B_free": s.B_free, "A": s.A, "B": s.B, "source": s.source,
                                     "weights": form.row_weights}),
                      "free_u": torch.as_tensor(~gu, device=env.device), "free_q": torch.as_tensor(gu, device=env.device)}

    def before_step(self, step: int) -> None:
        pass  # the boundary nodes never change

    def before_chunk(self, step: int) -> None:
        pass

    def hook_points(self) -> torch.Tensor:
        return self.batch["nodes"].detach()

    def state(self) -> dict:
        return {}


class BoundaryScorer(Scorer):
    """Errors of the interior fields (and the form's derived quantities) by the representation formula, on
    held-out points inside Γ, 10% of them within 0.01 × size of it; the BIE residual RMS (float64)."""

    def __init__(self, form: BoundaryIntegralForm, problem, model, cfg, env: Env):
        self.form, self.problem, self.model, self.env = form, problem, model, env
        self.x = form.eval_points(cfg.points.n_eval, geometry.seed_stream(cfg.train.seed, "eval"))
        self.y = problem.reference_values(self.x)
        self.eval_points, self.pred = self.x, None
        self.rep = representation(form.boundary, form.kernel, self.x, n=form.n)
        self.offset = form.offset(self.x, derived=bool(form.derived))  # the derived part only if scored
        # while training, a subset scored by matrices assembled once (the adaptive integrals cost ~1 s a call)
        self.every = max(1, len(self.x) // DURING)
        blocks = list(representation(form.boundary, form.kernel, self.x[:: self.every], n=form.n).blocks())
        self.Vu, self.Vq = (np.concatenate([b[k] for b in blocks]) for k in (1, 2))

    def during(self) -> dict[str, float]:
        u, q = self.form.boundary_data(self.model, self.problem, self.env)
        s = self.form.system
        value = (self.Vq @ (q - s.q_shift).ravel() - self.Vu @ (u - s.u_shift).ravel()).reshape(
            -1, len(self.problem.fields)) + self.offset.value[:: self.every]
        return evaluate.errors(value, self.y[:: self.every], self.problem.fields)

    def final(self) -> tuple[dict[str, float], float | None]:
        form, problem = self.form, self.problem
        u, q = form.boundary_data(self.model, problem, self.env)
        f = form.interior(self.rep, u, q, self.offset)
        self.pred = f.value
        errors = evaluate.errors(f.value, self.y, problem.fields)
        for name, fn in form.derived.items():
            errors.update(evaluate.errors(fn(f.value, f.derived)[:, None],
                                          problem.derived_reference(name, self.x)[:, None], (name,)))
        s = form.system
        residual = s.A @ u.ravel() - s.B @ q.ravel() - s.source
        return errors, float(np.sqrt(np.mean(residual**2)))

    def write(self, result) -> None:
        problem, run_dir, form = self.problem, result.run_dir, self.form
        rundir.write_fields(run_dir, self.x, self.pred, self.y, problem.fields, problem.coords)
        figures.fields(run_dir / "figures" / "fields.png", self.x, self.pred, self.y, problem.fields,
                       problem.coords, form.boundary.contains)
        plot(form.boundary, run_dir / "figures" / "boundary.png", {tag: describe(form.per_component(tag))
                                                                    for tag in form.boundary.tags})
        write_summary(result)


def describe(data: tuple) -> str:
    """'u given' / 'ux given, ty given'-style text of a tag's data, for the boundary figure."""
    if len(data) == 1:
        return "u given" if data[0].given == "value" else "∂u/∂n given"
    return ", ".join(f"{'u' if d.given == 'value' else 't'}{'xy'[j]} given" for j, d in enumerate(data))
