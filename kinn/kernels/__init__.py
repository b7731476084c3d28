"""Basis kernels for the KAN family: B-splines (Cox-de Boor reference and uniform closed form), Chebyshev."""
from .bspline import (
    CompactBasis,
    cox_de_boor,
    reference_enabled,
    to_dense,
    uniform_bspline,
    uniform_knots,
    use_reference,
)
from .chebyshev import ChebyshevBasis, chebyshev

__all__ = [
    "ChebyshevBasis",
    "CompactBasis",
    "chebyshev",
    "cox_de_boor",
    "reference_enabled",
    "to_dense",
    "uniform_bspline",
    "uniform_knots",
    "use_reference",
]
