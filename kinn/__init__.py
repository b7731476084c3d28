"""kinn: physics-informed PDE solvers — a problem catalogue solved by KAN, FNO and MLP families.

    import kinn
    result = kinn.solve("poisson2d", solver="mlp", steps=2000, lbfgs=500)
    result.errors["rel_l2/u"], result.predict([[0.5, 0.5]])["u"]
    again = kinn.load(result.run_dir)
    table = kinn.compare("poisson2d", solvers=("mlp", "kan", "deepxde"), seeds=3, budget_steps=2000)

The names below load on first use: `import kinn.kernels` or `import kinn.solvers.kan` needs only torch,
not deepxde (whose import is slow and absent from bare GPU images).
"""
import importlib

_WHERE = {
    "solve": "api", "load": "api", "Result": "api", "compare": "comparison", "Comparison": "comparison",
    "Problem": "problem", "StrongForm": "forms", "EnergyForm": "forms", "OperatorForm": "forms", "InverseForm": "forms", "Unknown": "forms", "UnknownField": "forms", "Observations": "forms", "KinnError": "errors",
    "Dirichlet": "conditions", "Neumann": "conditions", "Initial": "conditions", "Traction": "conditions",
    "OutputTransform": "conditions", "BoundaryResidual": "conditions", "Interface": "conditions",
    "SegmentResidual": "conditions",
    "Interval": "geometry", "Rectangle": "geometry", "Disk": "geometry", "Polygon": "geometry",
    "TimeDomain": "geometry", "GeometryXTime": "geometry", "at": "geometry",
}
__all__ = [*_WHERE, "ops", "mechanics"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if name in ("ops", "mechanics"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'kinn' has no attribute '{name}'")
