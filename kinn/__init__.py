"""kinn: physics-informed PDE solvers — a problem catalogue solved by KAN, FNO and MLP families.

    import kinn
    result = kinn.solve("poisson2d", family="mlp", steps=2000, lbfgs=500)
    result.errors["rel_l2/u"], result.predict([[0.5, 0.5]])["u"]
    again = kinn.load(result.run_dir)
    kinn.score(result.run_dir, "reference.npz")        # errors against a reference attached afterwards
    table = kinn.compare("poisson2d", families=("mlp", "kan", "deepxde"), seeds=3, budget_steps=2000)

The names below load on first use: `import kinn.kernels` or `import kinn.solvers.kan` needs only torch,
not deepxde (whose import is slow and absent from bare GPU images).

The package follows the pipeline: `pde/` (the vocabulary a problem is written in), `forms/` (how it is
posed for training), `models/` (families' networks wrapped for a problem), `run/` (config, the training
loop, the run directory), `data/` (references and datasets), `comparison/`, `kernels/`.
"""
import importlib

_WHERE = {
    "solve": "run.pipeline", "load": "run.pipeline", "Result": "run.pipeline", "score": "run.scoring",
    "compare": "comparison.compare", "Comparison": "comparison.compare",
    "Problem": "pde.problem", "KinnError": "errors", "Family": "models.family",
    "Form": "forms.base", "StrongForm": "forms.strong", "EnergyForm": "forms.energy", "OperatorForm": "forms.operator",
    "BoundaryIntegralForm": "forms.boundary_integral", "InverseForm": "forms.boundary_integral",
    "Value": "forms.boundary_integral", "Flux": "forms.boundary_integral",
    "ParticularSolution": "forms.source", "DomainIntegral": "forms.source",
    "InverseProblemForm": "forms.inverse_problem", "EnergyInverseProblemForm": "forms.inverse_problem",
    "Unknown": "forms.inverse_problem",
    "UnknownField": "forms.inverse_problem", "Observations": "forms.inverse_problem",
    "Dirichlet": "pde.conditions", "Neumann": "pde.conditions", "Initial": "pde.conditions",
    "Traction": "pde.conditions", "OutputTransform": "pde.conditions", "BoundaryResidual": "pde.conditions",
    "Interface": "pde.conditions", "SegmentResidual": "pde.conditions",
    "Interval": "pde.geometry", "Rectangle": "pde.geometry", "Disk": "pde.geometry", "Polygon": "pde.geometry",
    "TimeDomain": "pde.geometry", "GeometryXTime": "pde.geometry", "at": "pde.geometry",
}
_MODULES = {"ops": "pde.ops", "mechanics": "pde.mechanics", "geometry": "pde.geometry"}
__all__ = [*_WHERE, *_MODULES]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _WHERE:
        # InverseForm: KINN's inverse form, the boundary integral equation (BoundaryIntegralForm)
        attr = "BoundaryIntegralForm" if name == "InverseForm" else name
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), attr)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in _MODULES:
        return importlib.import_module(f".{_MODULES[name]}", __name__)
    raise AttributeError(f"module 'kinn' has no attribute '{name}'")
