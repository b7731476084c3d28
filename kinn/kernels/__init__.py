"""Kernels for the KAN family: B-spline and Chebyshev bases, and the jet of a KAN layer (PyTorch, C, Triton)."""
from kinn.kernels.bspline import (
    CompactBasis,
    cox_de_boor,
    reference_enabled,
    to_dense,
    uniform_bspline,
    uniform_bspline_polynomials,
    uniform_knots,
    use_reference,
)
from kinn.kernels import native_kan
from kinn.kernels.chebyshev import ChebyshevBasis, chebyshev, chebyshev_derivatives
from kinn.kernels.backend import BACKENDS, get_backend, set_backend
from kinn.kernels.kan_jet import JetBasis, kan_layer_jet, reference_jet, stacked_layer_jet

__all__ = [
    "BACKENDS",
    "ChebyshevBasis",
    "CompactBasis",
    "JetBasis",
    "chebyshev",
    "chebyshev_derivatives",
    "cox_de_boor",
    "get_backend",
    "kan_layer_jet",
    "native_kan",
    "reference_enabled",
    "reference_jet",
    "set_backend",
    "stacked_layer_jet",
    "to_dense",
    "uniform_bspline",
    "uniform_bspline_polynomials",
    "uniform_knots",
    "use_reference",
]
