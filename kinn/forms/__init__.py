"""The forms: how a problem is posed for training (`base.Form`), one module per kind.

    strong           StrongForm: collocation residuals (PINN)
    energy           EnergyForm: a potential minimised by quadrature (Deep Energy Method), `quadrature`
    boundary_integral BoundaryIntegralForm: KINN's inverse form, the boundary integral equation (BINN)
    source           its source term (Poisson): ParticularSolution, DomainIntegral
    inverse_problem  InverseProblemForm, EnergyInverseProblemForm: an inverse problem's strong and energy
                     forms, fitted to observations, with Unknown scalars and UnknownFields
    operator         OperatorForm: operator learning from a dataset (FNO, PINO)
    points           what the pointwise forms share: point sets, scoring, field evaluation helpers
"""
from kinn.forms.base import Data, Env, Form, Scorer
from kinn.forms.energy import EnergyForm
from kinn.forms.boundary_integral import BoundaryIntegralForm, Flux, Value
from kinn.forms.inverse_problem import EnergyInverseProblemForm, InverseProblemForm, Observations, Unknown, UnknownField
from kinn.forms.operator import OperatorForm
from kinn.forms.source import DomainIntegral, ParticularSolution
from kinn.forms.points import PointForm, at_points, columns, field_at
from kinn.forms.strong import StrongForm

InverseForm = BoundaryIntegralForm  # KINN's name for the boundary-integral form

__all__ = ["BoundaryIntegralForm", "Data", "DomainIntegral", "EnergyForm", "EnergyInverseProblemForm", "Env", "Flux",
           "Form", "InverseForm", "InverseProblemForm", "Observations", "OperatorForm", "ParticularSolution", "PointForm",
           "Scorer", "StrongForm", "Unknown", "UnknownField", "Value", "at_points", "columns", "field_at"]
