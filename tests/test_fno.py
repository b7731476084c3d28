"""The FNO family: spectral convolution against a direct DFT, resolution invariance, the network, the seam."""
import math

import pytest
import torch

from kinn.pde import geometry
from kinn.pde import ops
from kinn import Disk, GeometryXTime, Interval, Polygon, Problem, Rectangle, StrongForm, TimeDomain
from kinn.errors import KinnError
from kinn.registry import get_family
from kinn.solvers.fno import FNO, FNOConfig, FNOFamily, SpectralConv

F64 = torch.float64


def _dft(n: int, ks: torch.Tensor, sign: int) -> torch.Tensor:
    """The matrix e^(sign 2 pi i k j / n), rows k in ks, columns j = 0 .. n - 1."""
    j = torch.arange(n, dtype=F64)
    return torch.exp(sign * 2j * math.pi * torch.outer(ks.to(F64), j) / n)


def _half_weights(n: int, m: int) -> torch.Tensor:
    """Weights of the rfft half-spectrum k = 0 .. m - 1 in a real inverse DFT: 1 for k = 0 and the
    Nyquist frequency n/2 (their own conjugates), 2 for every other k (k and -k)."""
    return torch.tensor([1.0 if k == 0 or 2 * k == n else 2.0 for k in range(m)], dtype=F64)


def spectral_by_dft(layer: SpectralConv, x: torch.Tensor) -> torch.Tensor:
    """SpectralConv's output computed by explicit DFT sums, in float64, independently of torch.fft."""
    w = torch.view_as_complex(layer.weight.detach())
    if layer.dim == 1:
        n = x.shape[-1]
        m = min(layer.modes[0], n // 2 + 1)
        k = torch.arange(m)
        X = torch.einsum("bij,kj->bik", x.to(torch.complex128), _dft(n, k, -1))  # (B, C_in, m)
        Y = torch.einsum("bik,iok->bok", X, w[..., :m])
        terms = torch.einsum("bok,kj->bokj", Y, _dft(n, k, +1)).real  # Re(Y_k e^(2 pi i k j / n))
        return torch.einsum("bokj,k->boj", terms, _half_weights(n, m)) / n
    n1, n2 = x.shape[-2:]
    m1 = layer.modes[0]
    m2 = min(layer.modes[1], n2 // 2 + 1)
    pos, neg = min(m1, (n1 + 1) // 2), min(m1, n1 // 2)
    k1 = torch.cat([torch.arange(pos), torch.arange(-neg, 0)])  # frequencies 0 .. pos-1 and -neg .. -1
    w1 = torch.cat([w[:, :, :pos], torch.view_as_complex(layer.weight_neg.detach())[:, :, m1 - neg:]], dim=2)
    k2 = torch.arange(m2)
    X = torch.einsum("biuv,ku,lv->bikl", x.to(torch.complex128), _dft(n1, k1, -1), _dft(n2, k2, -1))
    Y = torch.einsum("bikl,iokl->bokl", X, w1[..., :m2])
    terms = torch.einsum("bokl,ku,lv->bokluv", Y, _dft(n1, k1, +1), _dft(n2, k2, +1)).real
    return torch.einsum("bokluv,l->bouv", terms, _half_weights(n2, m2)) / (n1 * n2)


@pytest.mark.parametrize("grid,modes", [
    ((10,), (3,)),
    ((9,), (4,)),
    ((4,), (5,)),  # fewer modes on the grid than configured: k = 0, 1, 2 (Nyquist)
    ((8, 6), (3, 2)),
    ((7, 6), (3, 4)),  # odd first axis; the rfft axis keeps all 4 = 6 // 2 + 1 (Nyquist included)
    ((4, 4), (3, 3)),  # coarse: 2 positive, 2 negative first-axis frequencies, 3 along the rfft axis
    ((5, 3), (6, 6)),
])
def test_spectral_conv_matches_a_direct_dft(grid, modes):
    layer = SpectralConv(3, 2, modes).to(F64)
    with torch.no_grad():  # weights of both signs, so that nothing cancels by accident
        for p in layer.parameters():
            p.normal_()
    x = torch.randn(2, 3, *grid, dtype=F64)
    y = layer(x)
    assert y.shape == (2, 2, *grid) and y.dtype == F64
    torch.testing.assert_close(y, spectral_by_dft(layer, x), rtol=0, atol=1e-12)


def test_spectral_conv_weights_are_real_pairs_viewed_as_complex():
    layer = SpectralConv(4, 5, (3, 2))
    assert layer.weight.shape == layer.weight_neg.shape == (4, 5, 3, 2, 2)
    assert torch.view_as_complex(layer.weight).dtype == torch.complex64
    assert 0 <= layer.weight.min() and layer.weight.max() <= 1 / 20  # 1/(C_in C_out) * U[0, 1)
    layer = layer.to(dtype=F64)
    assert torch.view_as_complex(layer.weight).dtype == torch.complex128
    assert SpectralConv(2, 2, (3,)).weight_neg is None


def _band_limited(n: int, dim: int, channels: int, seed: int = 1) -> torch.Tensor:
    """A periodic signal of frequencies |k| <= 3 per axis on n nodes per axis, (1, channels, n[, n])."""
    g = torch.Generator().manual_seed(seed)
    s = torch.arange(n, dtype=F64) / n
    out = torch.zeros(channels, *(n,) * dim, dtype=F64)
    for c in range(channels):
        for k in range(4):
            for l in range(-3, 4) if dim == 2 else (0,):
                a, b = torch.randn(2, generator=g, dtype=F64)
                phase = 2 * math.pi * (k * s[:, None] + l * s[None, :]) if dim == 2 else 2 * math.pi * k * s
                out[c] += a * torch.cos(phase) + b * torch.sin(phase)
    return out[None]


@pytest.mark.parametrize("dim,modes", [(1, (5,)), (2, (3, 2)), (2, (5, 5))])
def test_spectral_conv_is_resolution_invariant_on_band_limited_input(dim, modes):
    layer = SpectralConv(2, 3, modes).to(F64)
    coarse, fine = layer(_band_limited(32, dim, 2)), layer(_band_limited(64, dim, 2))
    torch.testing.assert_close(fine[(..., *(slice(None, None, 2),) * dim)], coarse, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim,tol", [(1, 1e-5), (2, 5e-3)])
def test_fno_is_nearly_resolution_invariant(dim, tol):
    """The activations create harmonics above the grid's Nyquist frequency, which alias on 32 nodes but
    far less on 64, so the two outputs agree only approximately. Measured (tanh, modes 6, width 8, depth
    3, default init): max |difference| / max |output| over torch seeds 0-7 was 5e-12 .. 1.4e-6 in 1-D and
    2.6e-5 .. 1.7e-3 in 2-D (seed 0, this test's: 1e-10 and 1.6e-4; the 2-D input, 28 terms a channel,
    is larger, so tanh bends it more). The tolerances sit above the worst seed."""
    model = FNO(2, 1, dim, modes=6, width=8, depth=3, activation="tanh", projection=16).to(F64)
    with torch.no_grad():
        coarse, fine = model(_band_limited(32, dim, 2)), model(_band_limited(64, dim, 2))
    diff = (fine[(..., *(slice(None, None, 2),) * dim)] - coarse).abs().max()
    assert diff < tol * coarse.abs().max()


def test_fno_runs_on_grids_coarser_than_its_modes():
    model = FNO(1, 2, 2, modes=12, width=8, depth=2, projection=8)
    for grid in [(3, 2), (5, 7), (1, 1)]:
        assert model(torch.randn(2, 1, *grid)).shape == (2, 2, *grid)
    model = FNO(1, 1, 1, modes=12, width=8, depth=2, projection=8)
    assert model(torch.randn(1, 1, 4)).shape == (1, 1, 4)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("dim,grid", [(1, (16,)), (2, (12, 10))])
def test_fno_shapes_dtypes_and_gradients(dim, grid, dtype):
    model = FNO(3, 2, dim, modes=4, width=6, depth=3, projection=10).to(dtype)
    assert FNOFamily.lattice is True
    y = model(torch.randn(2, 3, *grid, dtype=dtype))
    assert y.shape == (2, 2, *grid) and y.dtype == dtype
    (y * torch.randn_like(y)).sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    per_layer = 6 * 6 * 4**dim * 2 * (2 if dim == 2 else 1)  # C_in C_out modes (re, im) blocks
    assert sum(p.numel() for n, p in model.named_parameters() if n.startswith("spectral")) == 3 * per_layer


@pytest.mark.parametrize("dim,grid", [(1, (20,)), (2, (9, 11))])
def test_padding_crops_back_to_the_input_grid(dim, grid):
    padded = FNO(2, 1, dim, modes=4, width=6, depth=2, padding=0.5, projection=8).to(F64)
    plain = FNO(2, 1, dim, modes=4, width=6, depth=2, padding=0, projection=8).to(F64)
    plain.load_state_dict(padded.state_dict())  # same weights; only the padding differs
    x = torch.randn(1, 2, *grid, dtype=F64)
    y = padded(x)
    assert y.shape == (1, 1, *grid)
    assert (y - plain(x)).abs().max() > 1e-6  # the zeros took part in the spectral convolutions


def test_fno_rejects_bad_arguments():
    with pytest.raises(ValueError, match="gelu, tanh, relu, silu"):
        FNO(1, 1, 1, activation="sin")
    with pytest.raises(ValueError, match="1-D and 2-D"):
        FNO(3, 1, 3)
    with pytest.raises(ValueError, match="one entry per grid axis"):
        FNO(2, 1, 2, modes=(4,))


# ---- the family seam ----

def _problem(name, domain):
    return Problem(name=name, domain=domain, strong=StrongForm(lambda u, x: ops.laplacian(u)))


def test_family_is_registered_and_builds_from_its_config():
    fam = get_family("fno")
    assert isinstance(fam, FNOFamily) and fam.name == "fno" and fam.forms == {"strong", "operator"}
    cfg = fam.config({"modes": 4, "width": 8, "depth": 2, "projection": 16, "activation": "silu"})
    net = fam.build(2, 1, cfg)
    assert net.dim == 2 and net(torch.randn(1, 2, 8, 8)).shape == (1, 1, 8, 8)
    net = fam.build(3, 2, cfg, dim=1)  # an operator: 3 input channels on a 1-D grid
    assert net(torch.randn(4, 3, 16)).shape == (4, 2, 16)
    assert fam.config() == FNOConfig()


@pytest.mark.parametrize("options,match", [
    ({"modes": 0}, "model.modes must be a positive integer"),
    ({"width": 2.5}, "model.width"),
    ({"depth": True}, "model.depth"),
    ({"padding": -1}, "model.padding must be a fraction"),
    ({"projection": "big"}, "model.projection"),
    ({"activation": "sin"}, "model.activation must be one of gelu, tanh, relu, silu"),
    ({"mode": 4}, "unknown option.*mode.*allowed: activation, depth, modes"),
])
def test_config_errors_name_the_option(options, match):
    with pytest.raises(KinnError, match=match):
        get_family("fno").config(options)


@pytest.mark.parametrize("domain,kind", [
    (Disk([0, 0], 1), "Disk"),
    (Polygon([[0, 0], [1, 0], [1, 1], [0.5, 2]]), "Polygon"),
    (Rectangle([0, 0], [1, 1]) - Disk([0.5, 0.5], 0.2), "CSGDifference"),
    (GeometryXTime(Disk([0, 0], 1), TimeDomain(0, 1)), "Disk"),
])
def test_check_refuses_domains_that_are_not_boxes(domain, kind):
    with pytest.raises(KinnError, match=f"on a {kind} domain, which is not a box: not supported by the FNO "
                                        "family .*use mlp or kan"):
        get_family("fno").check(_problem("odd", domain), "strong")


def test_check_refuses_three_coordinates_and_unsupported_forms():
    fam = get_family("fno")
    for domain in (geometry.Cuboid([0, 0, 0], [1, 1, 1]), GeometryXTime(Rectangle([0, 0], [1, 1]), TimeDomain(0, 1))):
        with pytest.raises(KinnError, match="supports 1-D and 2-D grids; problem 'cube' has 3 coordinates"):
            fam.check(_problem("cube", domain), "strong")
    with pytest.raises(KinnError, match="does not support the energy form; it supports: operator, strong"):
        fam.check(_problem("square", Rectangle([0, 0], [1, 1])), "energy")


@pytest.mark.parametrize("domain", [
    Interval(-1, 2),
    Rectangle([0, 0], [2, 1]),
    geometry.Hypercube([0, 0], [1, 1]),
    GeometryXTime(Interval(0, 1), TimeDomain(0, 0.5)),
])
def test_check_accepts_boxes_of_one_or_two_axes(domain):
    get_family("fno").check(_problem("box", domain), "strong")
    get_family("fno").check(_problem("box", domain), "operator", FNOConfig(modes=4))
