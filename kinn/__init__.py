"""kinn: physics-informed PDE solvers — a problem catalogue solved by KAN, FNO and MLP families.

    import kinn
    result = kinn.solve("poisson2d", solver="mlp", steps=2000, lbfgs=500)
    result.errors["rel_l2/u"], result.predict([[0.5, 0.5]])["u"]
    again = kinn.load(result.run_dir)
    table = kinn.compare("poisson2d", solvers=("mlp", "kan", "deepxde"), seeds=3, budget_steps=2000)
"""
from . import ops
from .api import Result, load, solve
from .compare import Comparison, compare
from .conditions import Dirichlet, Initial, Neumann, OutputTransform
from .errors import KinnError
from .forms import StrongForm
from .geometry import Disk, GeometryXTime, Interval, Polygon, Rectangle, TimeDomain, at
from .problem import Problem

__all__ = [
    "solve", "load", "Result", "compare", "Comparison", "Problem", "StrongForm", "Dirichlet", "Neumann", "Initial",
    "OutputTransform", "Interval", "Rectangle", "Disk", "Polygon", "TimeDomain", "GeometryXTime", "at", "ops", "KinnError",
]
__version__ = "0.1.0"
