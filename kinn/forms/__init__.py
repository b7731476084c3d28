"""The forms: how a problem is posed for training (`base.Form`), one module per kind.

    strong           StrongForm: collocation residuals (PINN)
    energy           EnergyForm: a potential minimised by quadrature (Deep Energy Method), `quadrature`
    inverse_problem  InverseForm: the strong form fitted to observations, with Unknown scalars and
                     UnknownFields
    operator         OperatorForm: operator learning from a dataset (FNO, PINO)
    points           what the pointwise forms share: point sets, scoring, field evaluation helpers
"""
from kinn.forms.base import Data, Env, Form, Scorer
from kinn.forms.energy import EnergyForm
from kinn.forms.inverse_problem import InverseForm, Observations, Unknown, UnknownField
from kinn.forms.operator import OperatorForm
from kinn.forms.points import PointForm, at_points, columns, field_at
from kinn.forms.strong import StrongForm

__all__ = ["Data", "EnergyForm", "Env", "Form", "InverseForm", "Observations", "OperatorForm", "PointForm",
           "Scorer", "StrongForm", "Unknown", "UnknownField", "at_points", "columns", "field_at"]
