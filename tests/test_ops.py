"""Operators against closed forms in float64, on both scalar and vector fields, with and without time."""
import pytest
import torch

from kinn.pde import ops
from kinn.pde.fields import AutogradBackend, Field


def field(fn, names, coords, n_space, n=64):
    x = torch.rand(n, len(coords), dtype=torch.float64, requires_grad=True)
    return Field(AutogradBackend(fn(x), x), names, coords, n_space), x.detach()


def test_scalar_operators_2d():
    u, x = field(lambda x: (x[:, :1] ** 3 * torch.sin(x[:, 1:])), ("u",), ("x", "y"), 2)
    X, Y = x[:, :1], x[:, 1:]
    g = torch.cat([3 * X**2 * torch.sin(Y), X**3 * torch.cos(Y)], 1)
    torch.testing.assert_close(ops.grad(u), g, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ops.laplacian(u), 6 * X * torch.sin(Y) - X**3 * torch.sin(Y), rtol=1e-12, atol=1e-12)
    H = ops.hessian(u)
    torch.testing.assert_close(H[:, 0, 1:2], 3 * X**2 * torch.cos(Y), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(H[:, 0, 1], H[:, 1, 0], rtol=0, atol=1e-13)
    torch.testing.assert_close(ops.d(u, "y", "y"), -X**3 * torch.sin(Y), rtol=1e-12, atol=1e-12)


def test_vector_operators():
    u, x = field(lambda x: torch.cat([x[:, :1] ** 2 * x[:, 1:], torch.exp(x[:, :1]) * x[:, 1:] ** 2], 1),
                 ("ux", "uy"), ("x", "y"), 2)
    X, Y = x[:, :1], x[:, 1:]
    J = ops.jacobian(u)
    assert J.shape == (64, 2, 2)
    torch.testing.assert_close(J[:, 1, :], torch.cat([torch.exp(X) * Y**2, 2 * torch.exp(X) * Y], 1))
    torch.testing.assert_close(ops.div(u), 2 * X * Y + 2 * torch.exp(X) * Y)
    torch.testing.assert_close(ops.laplacian(u), torch.cat([2 * Y, torch.exp(X) * (Y**2 + 2)], 1))
    ux, uy = u.split()
    torch.testing.assert_close(ops.grad(uy), J[:, 1, :])
    with pytest.raises(ValueError, match="scalar field"):
        ops.grad(u)


def test_time_axis_is_excluded_from_spatial_operators():
    u, x = field(lambda x: torch.sin(x[:, :1]) * torch.exp(-x[:, 1:]), ("u",), ("x", "t"), 1)
    X, T = x[:, :1], x[:, 1:]
    assert ops.grad(u).shape == (64, 1)
    torch.testing.assert_close(ops.laplacian(u), -torch.sin(X) * torch.exp(-T))
    torch.testing.assert_close(ops.dt(u), -torch.sin(X) * torch.exp(-T))


def test_field_behaves_like_its_values():
    u, x = field(lambda x: x[:, :1] * 2.0, ("u",), ("x", "y"), 2)
    v = u.values
    torch.testing.assert_close(u * 3 + 1, v * 3 + 1)
    torch.testing.assert_close(1 - u, 1 - v)
    torch.testing.assert_close(torch.sin(u), torch.sin(v))
    torch.testing.assert_close(u**2 / 2, v**2 / 2)
    torch.testing.assert_close(u[:, 0], v[:, 0])
    with pytest.raises(KeyError, match="fields: u"):
        u["v"]


def test_ops_refuse_plain_tensors():
    with pytest.raises(TypeError, match="field handles"):
        ops.laplacian(torch.zeros(3, 1))


def test_normal_derivative():
    u, x = field(lambda x: torch.cat([x[:, :1] ** 2 * x[:, 1:], torch.sin(x[:, 1:])], 1), ("a", "b"), ("x", "y"), 2)
    n = torch.nn.functional.normalize(torch.randn(64, 2, dtype=torch.float64), dim=1)
    expected = torch.einsum("ncd,nd->nc", ops.jacobian(u), n)
    torch.testing.assert_close(ops.normal(u, n), expected)
    X, Y = x[:, :1], x[:, 1:]
    torch.testing.assert_close(ops.normal(u["b"], n), torch.cos(Y) * n[:, 1:])
    torch.testing.assert_close(ops.normal(u["a"], n), 2 * X * Y * n[:, :1] + X**2 * n[:, 1:])
