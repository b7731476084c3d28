"""Boundary-integral numerics for the inverse (BINN) form: geometry, rules, kernels and operators.

    from kinn.boundary import box, Laplace, bie_operator, representation
    b = box((0, 0), (2, 1), per_edge=10)
    op = bie_operator(b, Laplace(), n=10, sources_per_panel=[0.0, 0.5])   # R = op.A @ u − op.B @ q
    field = representation(b, Laplace(), points)(u, q)                    # interior u and ∇u

Everything is numpy float64; boundary data are values at n Gauss–Legendre nodes per panel
(`nodes(boundary, n)`), and every operator is a matrix acting on them (see `integrals`).
"""
from kinn.boundary.integrals import BieOperator, Field, Nodes, Representation, bie_operator, nodes, representation
from kinn.boundary.kernels import Kelvin, Kernel, Laplace
from kinn.boundary.panels import Arc, Boundary, Loop, Panel, Segment, box, circle, polygon
from kinn.boundary.plot import plot
from kinn.boundary.rules import gauss_legendre, gauss_log, lagrange

__all__ = ["Arc", "BieOperator", "Boundary", "Field", "Kelvin", "Kernel", "Laplace", "Loop", "Nodes", "Panel",
           "Representation", "Segment", "bie_operator", "box", "circle", "gauss_legendre", "gauss_log",
           "lagrange", "nodes", "plot", "polygon", "representation"]
