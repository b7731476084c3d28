"""kinn.analysis.ntk: empirical NTKs against analytic kernels, per-point Jacobians, spectra and the plot."""
import numpy as np
import pytest
import torch

from kinn.analysis import ntk
from kinn.models.field import FieldModel
from kinn.solvers.kan import KAN

pytestmark = pytest.mark.usefixtures("float64")  # conftest.py


def features(x):
    """phi(x) (N, 5) of x (N, 1), and its second derivative in x."""
    x = x[:, 0]
    phi = torch.stack([torch.ones_like(x), x, x**2, torch.sin(3 * x), torch.cos(2 * x)], -1)
    d2 = torch.stack([0 * x, 0 * x, 2 + 0 * x, -9 * torch.sin(3 * x), -4 * torch.cos(2 * x)], -1)
    return phi, d2


class Linear(torch.nn.Module):
    """f(x) = w^T phi(x): the NTK of f is phi(x) phi(x')^T whatever w."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(5))

    def forward(self, x):
        return (features(x)[0] @ self.w).unsqueeze(-1)


class Tanh(torch.nn.Module):
    """f(x) = a tanh(b x), two parameters."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Parameter(torch.tensor(1.3)), torch.nn.Parameter(torch.tensor(-0.7))

    def forward(self, x):
        return self.a * torch.tanh(self.b * x)


def second_derivative(model, x):
    """The residual u'' (N,) of a 1-D model, by nested autograd in x."""
    x = x.clone().requires_grad_(True)
    (du,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    (d2u,) = torch.autograd.grad(du.sum(), x, create_graph=True)
    return d2u[:, 0]


def first_derivative(model, x):
    x = x.clone().requires_grad_(True)
    return torch.autograd.grad(model(x).sum(), x, create_graph=True)[0][:, 0]


@pytest.mark.parametrize("chunk", [1, 7, None])
def test_ntk_of_a_linear_model_is_its_feature_kernel(chunk):
    model, x = Linear(), torch.linspace(-2, 2, 40).unsqueeze(-1)
    phi, d2 = features(x)
    torch.testing.assert_close(ntk.ntk(model, ntk.solution, x, chunk=chunk), phi @ phi.T, rtol=0, atol=1e-12)
    # The residual u'' is linear in w too: its kernel is phi''(x) phi''(x')^T.
    torch.testing.assert_close(ntk.ntk(model, second_derivative, x, chunk=chunk), d2 @ d2.T, rtol=0, atol=1e-12)
    assert model.w.grad is None  # the rows are returned, never accumulated into .grad


def test_residual_ntk_of_a_nonlinear_model_matches_the_analytic_one():
    model, x = Tanh(), torch.linspace(-2, 2, 30).unsqueeze(-1)
    a, b, s = model.a.detach(), model.b.detach(), x[:, 0]
    # r = f' = a b sech^2(b x): dr/da = b sech^2, dr/db = a sech^2 - 2 a b x sech^2 tanh.
    sech2, th = 1 / torch.cosh(b * s) ** 2, torch.tanh(b * s)
    J = torch.stack([b * sech2, a * sech2 - 2 * a * b * s * sech2 * th], -1)
    torch.testing.assert_close(ntk.jacobian(model, first_derivative, x), J, rtol=0, atol=1e-13)
    torch.testing.assert_close(ntk.ntk(model, first_derivative, x), J @ J.T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fn", [ntk.solution, second_derivative], ids=["solution", "residual"])
def test_kan_jacobian_rows_are_single_point_gradients(fn):
    model = FieldModel(KAN([1, 4, 1], grid=5), np.array([0.0]), np.array([1.0]))
    x = torch.rand(12, 1)
    J = ntk.jacobian(model, fn, x, chunk=None)  # one graph for all points, a row per value
    params = list(model.parameters())
    for i in range(len(x)):  # each point alone, its gradient zeroed before: the independent reference
        model.zero_grad(set_to_none=True)
        fn(model, x[i : i + 1]).sum().backward()
        row = torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel()) for p in params])
        torch.testing.assert_close(J[i], row, rtol=1e-12, atol=1e-12)
    K = ntk.ntk(model, fn, x)  # point by point
    torch.testing.assert_close(K, J @ J.T, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(K, K.T, rtol=0, atol=0)
    assert ntk.spectrum(K)[-1] > -1e-10 * ntk.spectrum(K)[0]  # positive semi-definite up to rounding


def test_spectrum_is_sorted_eigenvalues():
    Q = torch.linalg.qr(torch.randn(6, 6)).Q
    values = torch.tensor([5.0, 3.0, 2.0, 1.0, 0.5, 1e-3])
    np.testing.assert_allclose(ntk.spectrum(Q @ torch.diag(values) @ Q.T), values.numpy(), rtol=1e-12, atol=1e-13)


def test_error_spectrum_finds_the_frequencies_and_amplitudes():
    n = 200
    x = np.arange(n) / n * 2.0  # a periodic grid on [0, 2)
    freq, amp = ntk.error_spectrum(0.3 + np.sin(2 * np.pi * 1.5 * x) - 0.1 * np.cos(2 * np.pi * 25 * x), length=2.0)
    assert freq.shape == amp.shape == (n // 2 + 1,)
    expected = np.zeros_like(amp)
    expected[freq == 0], expected[freq == 1.5], expected[freq == 25] = 0.3, 1.0, 0.1
    np.testing.assert_allclose(amp, expected, rtol=0, atol=1e-12)


def test_plot_spectra_writes_one_or_two_panels(tmp_path, monkeypatch):
    import kinn.run.figures

    axes, save = [], kinn.run.figures.save
    monkeypatch.setattr(kinn.run.figures, "save", lambda fig, path: (axes.append(len(fig.axes)), save(fig, path)))
    eig = {"kan": np.geomspace(1, 1e-6, 50), "mlp": np.geomspace(3, 1e-9, 50)}
    ntk.plot_spectra(eig, tmp_path / "ntk.png")
    ntk.plot_spectra(eig, tmp_path / "both.png", errors={"kan": ntk.error_spectrum(np.sin(np.arange(64.0)))})
    assert axes == [1, 2]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["both.png", "ntk.png"]
    assert (tmp_path / "both.png").read_bytes()[:4] == b"\x89PNG"
