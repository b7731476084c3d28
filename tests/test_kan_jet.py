"""The jet of a KAN layer: the reference against nested autograd; the fast PyTorch path, the C kernels and
the Triton kernels against the reference, forward and backward, on knots and outside the grid too.

The Triton kernels run on a CUDA GPU where there is one. Without one they run in Triton's interpreter, in
a child pytest process started with TRITON_INTERPRET=1: Triton decides at kernel definition (and, in some
versions, at import) whether to interpret, so setting the variable inside this process would depend on
import order and would leak interpreted kernels into every later test. The child runs the same test
functions (`test_triton_*`), which see the variable and take the CPU.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kinn.kernels import native_kan, set_backend, uniform_knots, use_reference
from kinn.solvers.kan import KANLinear, update_grid

ROOT = Path(__file__).resolve().parents[1]
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
CUDA = torch.cuda.is_available()
LO, HI, GRID = -1.25, 0.75, 4  # h = 0.5: knots, and every point computed from them, are exact in binary

BSPLINES = [dict(order=k) for k in (2, 3, 4, 5)]
LAYERS = [*BSPLINES, dict(order=3, base=None), dict(basis="chebyshev", order=4)]


pytestmark = pytest.mark.usefixtures("float64")  # conftest.py


@pytest.fixture(autouse=True)
def auto_backend():
    yield
    set_backend("auto")


def make_layer(fan_in=3, fan_out=4, dtype=torch.float64, device="cpu", **options) -> KANLinear:
    """A layer with unit-size random coefficients, so that the spline branch is not a small correction."""
    layer = KANLinear(fan_in, fan_out, grid=GRID, grid_range=(LO, HI), **options)
    with torch.no_grad():
        layer.spline_weight.normal_()
    return layer.to(dtype=dtype, device=device)


def points(layer: KANLinear, n: int = 40) -> torch.Tensor:
    """(n + extra, in): random points over the extended knot span and beyond, every knot, and far away."""
    gen = torch.Generator().manual_seed(n)
    k = layer.order
    reach = (k + 2) * (HI - LO) / GRID
    x = LO - reach + (HI - LO + 2 * reach) * torch.rand(n, layer.in_features, generator=gen)
    special = torch.cat([uniform_knots(GRID, k, LO, HI), torch.tensor([-100.0, 100.0])])  # (K + 2,)
    return torch.cat([x, special.unsqueeze(-1).expand(-1, layer.in_features)])


def coordinates_to_inputs(c: torch.Tensor, fan_in: int) -> torch.Tensor:
    """A smooth map of P = 2 coordinates (N, 2) onto layer inputs (N, in) over the grid and beyond it."""
    x, y = c[:, :1], c[:, 1:]
    k = torch.arange(1, fan_in + 1, dtype=c.dtype)
    return 1.6 * torch.sin(k * x + 0.7 * y) + 0.4 * x * y * k - 0.3  # (N, in)


def input_jets(c: torch.Tensor, fan_in: int):
    """x (N, in) and its gradients and Hessian diagonals (N, in, 2) with respect to c, by autograd."""
    c = c.clone().requires_grad_(True)
    x = coordinates_to_inputs(c, fan_in)
    g = torch.stack([torch.autograd.grad(x[:, i].sum(), c, create_graph=True)[0] for i in range(fan_in)], 1)
    h = [[torch.autograd.grad(g[:, i, p].sum(), c, retain_graph=True)[0][:, p] for p in range(2)]
         for i in range(fan_in)]
    return x.detach(), g.detach(), torch.stack([torch.stack(hi, -1) for hi in h], 1)


def nested_autograd(layer: KANLinear, c: torch.Tensor):
    """The layer output at x = f(c), its gradients and its Hessian diagonals (N, out, 2), by nested autograd."""
    c = c.clone().requires_grad_(True)
    y = layer(coordinates_to_inputs(c, layer.in_features))
    g = torch.stack([torch.autograd.grad(y[:, j].sum(), c, create_graph=True)[0] for j in range(y.shape[1])], 1)
    h = [[torch.autograd.grad(g[:, j, p].sum(), c, retain_graph=True)[0][:, p] for p in range(2)]
         for j in range(y.shape[1])]
    return y.detach(), g.detach(), torch.stack([torch.stack(hj, -1) for hj in h], 1)


def jet_and_gradients(layer: KANLinear, x, gx, hx, backend: str) -> list[torch.Tensor]:
    """y, gy, hy, then the gradients of a scalar loss of them w.r.t. x, gx, hx and every parameter."""
    set_backend(backend)
    inputs = [t.detach().clone().requires_grad_(True) for t in (x, gx, hx)]
    y, gy, hy = layer.jet(*inputs)
    gen = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, generator=gen, dtype=t.dtype).to(t.device) for t in (y, gy, hy)]
    loss = (y * weights[0]).sum() + (gy**2 * weights[1]).sum() + (hy * weights[2]).sum()
    loss = loss + (hy.sum(-1) ** 2).mean()  # the Laplacian's square, as in a residual
    layer.zero_grad(set_to_none=True)
    loss.backward()
    return [y, gy, hy, *(t.grad for t in inputs), *(p.grad for p in layer.parameters())]


def assert_all_close(actual: list, expected: list, tol: float) -> None:
    """Each pair equal to `tol` relative to the larger of 1 and the expected tensor's largest entry."""
    assert len(actual) == len(expected)
    for i, (a, b) in enumerate(zip(actual, expected)):
        assert a.shape == b.shape, f"tensor {i}: {tuple(a.shape)} != {tuple(b.shape)}"
        scale = max(1.0, b.abs().max().item())
        error = (a - b).abs().max().item()
        assert error <= tol * scale, f"tensor {i}: max error {error:.2e} > {tol:.0e} x {scale:.3g}"


# ---- the reference against nested autograd --------------------------------------------------------------


@pytest.mark.parametrize("options", [*LAYERS, "quantile"], ids=str)
def test_reference_jet_equals_nested_autograd(options):
    if options == "quantile":
        layer = make_layer()
        update_grid(layer, coordinates_to_inputs(torch.rand(200, 2) * 2 - 1, 3), mode="quantile")
        assert not layer.uniform
    else:
        layer = make_layer(**options)
    c = torch.rand(30, 2) * 2 - 1
    expected = nested_autograd(layer, c)
    set_backend("reference")
    actual = layer.jet(*input_jets(c, layer.in_features))
    assert_all_close(list(actual), list(expected), 1e-10)


def test_the_jet_value_is_the_layer_output():
    layer = make_layer()
    x = points(layer)
    gx = torch.randn(*x.shape, 2)
    for backend in ("reference", "fast"):
        set_backend(backend)
        torch.testing.assert_close(layer.jet(x, gx, gx)[0], layer(x), rtol=0, atol=1e-12)


# ---- every kind of jet: first derivatives only, the Hessian's diagonal, the whole Hessian --------------

KINDS = ["first", "diag", "full"]


def stacked_input_jet(c: torch.Tensor, fan_in: int, kind: str) -> torch.Tensor:
    """The stacked jet (N, S, in) of x = f(c) of this kind, by nested autograd over P = 2 coordinates."""

    c = c.clone().requires_grad_(True)
    x = coordinates_to_inputs(c, fan_in)
    return stacked_by_autograd(x, c, kind)


def stacked_by_autograd(y: torch.Tensor, c: torch.Tensor, kind: str) -> torch.Tensor:
    """y (N, W) of c (N, P) -> its stacked jet (N, S, W) of this kind, by nested autograd, detached."""
    from kinn.kernels.jets import pairs

    p = c.shape[1]
    g = torch.stack([torch.autograd.grad(y[:, j].sum(), c, create_graph=True)[0] for j in range(y.shape[1])], 1)
    rows = [y.detach().unsqueeze(1), g.detach().transpose(1, 2)]
    for a, b in pairs(p, kind):
        rows.append(torch.stack([torch.autograd.grad(g[:, j, a].sum(), c, retain_graph=True)[0][:, b]
                                 for j in range(y.shape[1])], 1).unsqueeze(1))
    return torch.cat(rows, 1)


def stacked_and_gradients(layer: KANLinear, J, backend: str, kind: str, squash=None) -> list[torch.Tensor]:
    """The layer's stacked jet of J, then the gradients of a scalar loss of it w.r.t. J and the parameters."""
    set_backend(backend)
    J = J.detach().clone().requires_grad_(True)
    out = layer.stacked_jet(J, squash, kind)
    gen = torch.Generator().manual_seed(1)
    weights = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
    loss = (out * weights).sum() + (out[:, 1:] ** 2).sum() / len(out) + out[:, 3:].sum((1, 2)).square().mean()
    grads = torch.autograd.grad(loss, [J, *layer.parameters()])
    return [out, *grads]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("options", [dict(order=3), dict(order=2, base=None), dict(basis="chebyshev", order=4)],
                         ids=str)
def test_reference_jet_of_every_kind_equals_nested_autograd(options, kind):
    layer = make_layer(**options)
    c = (torch.rand(30, 2) * 2 - 1).requires_grad_(True)
    expected = stacked_by_autograd(layer(coordinates_to_inputs(c, layer.in_features)), c, kind)
    set_backend("reference")
    actual = layer.stacked_jet(stacked_input_jet(c, layer.in_features, kind), None, kind)
    assert_all_close([actual], [expected], 1e-10)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("backend", ["fast", "native"])
def test_every_kind_on_every_cpu_backend_equals_reference(backend, kind, dtype, tol):
    if backend == "native" and not native_kan.available():
        pytest.skip(f"the C kernels do not build here: {native_kan.why_unavailable()}")
    from kinn.kernels.jets import sets

    for options in (dict(order=3), dict(order=2, base=None, fan_out=70), dict(order=5, fan_in=9, fan_out=1)):
        layer = make_layer(dtype=dtype, **options)
        x = points(layer).to(dtype)
        gen = torch.Generator().manual_seed(5)
        J = torch.cat([x.unsqueeze(1), torch.randn(len(x), sets(2, kind) - 1, x.shape[1], generator=gen,
                                                   dtype=torch.float64).to(dtype)], 1)
        reference = stacked_and_gradients(layer, J, "reference", kind)
        assert_all_close(stacked_and_gradients(layer, J, backend, kind), reference, tol)


@pytest.mark.parametrize("fan_out", [9, 2], ids=["blocks", "narrow"])
@pytest.mark.parametrize("p", [1, 3, 4])
@pytest.mark.parametrize("kind", KINDS)
def test_native_kernels_of_every_kind_for_other_numbers_of_coordinates(native, kind, p, fan_out):
    """P = 1, 3 run the unrolled cases, P = 4 the general one; the squash fused; several chunks on threads;
    outputs by SIMD blocks and, for a narrow layer (two float64 outputs), SIMD over the inputs."""
    from kinn.kernels.jets import sets

    layer = make_layer(fan_in=4, fan_out=fan_out)
    gen = torch.Generator().manual_seed(p)
    J = torch.randn(300, sets(p, kind), 4, generator=gen, dtype=torch.float64) * 1.5
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        for squash in (None, (-0.25, 1.5)):
            reference = stacked_and_gradients(layer, J, "reference", kind, squash)
            assert_all_close(stacked_and_gradients(layer, J, "native", kind, squash), reference, 1e-10)
    finally:
        torch.set_num_threads(threads)


# ---- the fast PyTorch path against the reference --------------------------------------------------------


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("options", LAYERS, ids=str)
def test_fast_path_equals_reference(options, dtype, tol):
    layer = make_layer(dtype=dtype, **options)
    x = points(layer).to(dtype)
    gx, hx = torch.randn(*x.shape, 2, dtype=dtype), torch.randn(*x.shape, 2, dtype=dtype)
    reference = jet_and_gradients(layer, x, gx, hx, "reference")
    assert_all_close(jet_and_gradients(layer, x, gx, hx, "fast"), reference, tol)


@pytest.mark.parametrize("why", ["quantile knots", "use_reference"])
def test_quantile_knots_and_the_reference_switch_run_the_reference(why):
    layer = make_layer()
    x = points(layer)
    gx, hx = torch.randn(*x.shape, 2), torch.randn(*x.shape, 2)
    if why == "quantile knots":
        update_grid(layer, x[:40], mode="quantile")
    reference = jet_and_gradients(layer, x, gx, hx, "reference")
    previous = use_reference(why == "use_reference")
    try:
        assert_all_close(jet_and_gradients(layer, x, gx, hx, "fast"), reference, 0)
    finally:
        use_reference(previous)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="unknown jet backend 'cuda'; valid: auto, reference, fast, native, triton"):
        set_backend("cuda")


def test_the_environment_chooses_the_starting_backend():
    code = "from kinn.kernels import get_backend; print(get_backend())"
    for value, expected in (("native", "native"), ("reference", "reference")):
        run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "KINN_KERNELS": value},
                             capture_output=True, text=True, timeout=120)
        assert run.stdout.strip() == expected, run.stderr[-2000:]
    env = {**os.environ, "KINN_KERNELS": "cuda"}
    run = subprocess.run([sys.executable, "-m", "kinn", "solve", "poisson2d", "--solver", "kan", "--steps", "1"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "KINN_KERNELS='cuda' is not a jet backend; valid: auto, reference, fast, native, triton" in run.stderr


# ---- the C kernels against the reference ----------------------------------------------------------------

NATIVE_CASES = [*BSPLINES, dict(order=3, base=None), dict(order=3, fan_out=70), dict(order=1, fan_in=9, fan_out=1)]


@pytest.fixture
def native():
    if not native_kan.available():
        pytest.skip(f"the C kernels do not build here: {native_kan.why_unavailable()}")


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("options", NATIVE_CASES, ids=str)
def test_native_kernels_equal_reference(native, options, dtype, tol):
    layer = make_layer(dtype=dtype, **options)
    x = points(layer).to(dtype)
    gx, hx = torch.randn(*x.shape, 2, dtype=dtype), torch.randn(*x.shape, 2, dtype=dtype)
    reference = jet_and_gradients(layer, x, gx, hx, "reference")
    assert_all_close(jet_and_gradients(layer, x, gx, hx, "native"), reference, tol)


@pytest.mark.parametrize("p", [1, 3, 5])
def test_native_kernels_for_other_numbers_of_coordinates(native, p):
    """P = 1 and 3 run the unrolled cases, P = 5 the general one; several chunks of points on threads."""
    layer = make_layer(fan_in=4, fan_out=9)
    x = points(layer, n=400)
    gx, hx = torch.randn(*x.shape, p), torch.randn(*x.shape, p)
    reference = jet_and_gradients(layer, x, gx, hx, "reference")
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        assert_all_close(jet_and_gradients(layer, x, gx, hx, "native"), reference, 1e-10)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("squash", [(0.0, 1.0), (-0.25, 1.5)], ids=["tanh", "rescale"])
def test_native_kernels_fuse_the_squash_between_layers(native, squash, dtype, tol):
    """a + b tanh(J) applied in the kernels equals the reference's jet activation before the layer."""
    layer = make_layer(fan_in=5, fan_out=6, dtype=dtype)
    gen = torch.Generator().manual_seed(3)
    J = (torch.randn(50, 5, 5, generator=gen, dtype=dtype) * 1.5).requires_grad_(True)
    weights = torch.randn(50, 5, 6, generator=gen, dtype=dtype)
    results = []
    for backend in ("reference", "native"):
        set_backend(backend)
        out = layer.stacked_jet(J, squash)
        grads = torch.autograd.grad((out * weights).sum() + out[:, 3:].sum((1, 2)).square().mean(),
                                    [J, *layer.parameters()])
        results.append([out, *grads])
    assert_all_close(results[1], results[0], tol)


def test_native_kernels_refuse_what_they_do_not_handle(native):
    from kinn.kernels import JetBasis

    basis = JetBasis("bspline", 3, 13, 10)
    J, weight = torch.randn(8, 5, 3), torch.randn(4, 3, 14)
    with pytest.raises(ValueError, match="order <= 7 and at most 8 coordinates; got bspline, order 8, P = 2"):
        native_kan.native_stacked_jet(J, weight, basis._replace(order=8))
    with pytest.raises(ValueError, match="at most 8 coordinates; got bspline, order 3, P = 9"):
        native_kan.native_stacked_jet(torch.randn(8, 19, 3), weight, basis)
    with pytest.raises(ValueError, match="take float32 or float64 CPU tensors, not torch.float16 on cpu"):
        native_kan.native_stacked_jet(J.half(), weight.half(), basis)


def test_native_kernels_carry_nan_without_reading_out_of_bounds(native):
    """A NaN input (a diverged run) is located at the grid's low end, never at a garbage row; NaN comes out."""
    layer = make_layer()
    x = points(layer)
    x[3, 1] = float("nan")
    gx = torch.randn(*x.shape, 2)
    set_backend("native")
    y, gy, hy = layer.jet(x, gx, gx)
    assert y[3].isnan().all() and not y[torch.arange(len(y)) != 3].isnan().any()


def test_auto_runs_the_native_kernels_on_cpu_and_falls_back_to_fast(native, monkeypatch):
    layer = make_layer()
    x = points(layer)
    gx = torch.randn(*x.shape, 2)
    calls, apply = [], native_kan._NativeJet.apply
    monkeypatch.setattr(native_kan._NativeJet, "apply", lambda *a: calls.append(1) or apply(*a))
    set_backend("auto")
    layer.jet(x, gx, gx)
    assert calls
    monkeypatch.setattr(native_kan, "_library", lambda: "no C compiler found")
    assert_all_close(list(layer.jet(x, gx, gx)), list(jet_and_gradients(layer, x, gx, gx, "fast")[:3]), 0)
    set_backend("native")
    with pytest.raises(RuntimeError, match="the C jet kernels could not be built: no C compiler found"):
        layer.jet(x, gx, gx)


def test_a_failing_compiler_is_reported_and_the_library_is_built_once(tmp_path, monkeypatch):
    monkeypatch.setenv("KINN_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    native_kan._library.cache_clear()
    try:
        assert not native_kan.available()
        assert native_kan.why_unavailable().startswith("false failed")
        assert list(tmp_path.iterdir()) == []  # the temporary output is removed
        if shutil.which("cc") or shutil.which("gcc"):
            monkeypatch.setenv("CC", shutil.which("cc") or shutil.which("gcc"))
            native_kan._library.cache_clear()
            assert native_kan.available(), native_kan.why_unavailable()
            built = list(tmp_path.glob("native_kan-*.so"))
            assert len(built) == 1
            stamp = built[0].stat().st_mtime_ns
            native_kan._library.cache_clear()
            assert native_kan.available() and built[0].stat().st_mtime_ns == stamp  # reused, not rebuilt
    finally:
        native_kan._library.cache_clear()


# ---- the Triton kernels against the reference -----------------------------------------------------------


def triton_device() -> str:
    """Where the Triton tests run: the GPU, or the CPU under the interpreter; skips where neither."""
    pytest.importorskip("triton")
    if not (CUDA or INTERPRETED):
        pytest.skip("no CUDA device: test_triton_kernels_under_the_interpreter runs this in a child process")
    return "cuda" if CUDA and not INTERPRETED else "cpu"


TRITON_CASES = [dict(order=3), dict(order=2, base=None), dict(order=5, fan_out=70)]


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("options", TRITON_CASES, ids=str)
def test_triton_kernels_equal_reference(options, dtype, tol):
    device = triton_device()
    layer = make_layer(dtype=dtype, device=device, **options)
    x = points(layer).to(dtype=dtype, device=device)  # several blocks of points and weight chunks
    gx, hx = (torch.randn(*x.shape, 2, dtype=dtype).to(device) for _ in range(2))
    reference = jet_and_gradients(layer, x, gx, hx, "reference")
    assert_all_close(jet_and_gradients(layer, x, gx, hx, "triton"), reference, tol)
    if device == "cuda":
        assert_all_close(jet_and_gradients(layer, x, gx, hx, "auto"), reference, tol)  # auto picks Triton


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("kind, p", [("diag", 2), ("first", 2), ("full", 3)])
def test_triton_tanh_jet_equals_the_pytorch_rule(kind, p, dtype, tol):
    """The fused tanh on a stacked jet of each kind (a "full" one over 3 coordinates: 6 pairs (a, b)): values
    and the gradient of every input, large |v| included."""
    device = triton_device()
    from kinn.kernels import jets
    from kinn.kernels.triton_activation import triton_tanh_jet

    gen = torch.Generator().manual_seed(0)
    J = torch.randn(45, jets.sets(p, kind), 70, generator=gen, dtype=torch.float64)  # 45 x 70: partial blocks
    J[:, 0] *= 3
    J[0, 0, :4] = torch.tensor([-40.0, 40.0, 0.0, -0.0], dtype=torch.float64)  # tanh saturates, no overflow
    J = J.to(dtype=dtype, device=device).requires_grad_(True)
    weights = torch.randn(J.shape, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
    out = {}
    for name, fn in (("fused", lambda J: triton_tanh_jet(J, kind)),
                     ("pytorch", lambda J: jets.activation(jets.Jet(J, kind, p), "tanh").J)):
        y = fn(J)
        (grad,) = torch.autograd.grad((y * weights).sum(), J)
        out[name] = (y.detach(), grad)
    for a, b in zip(out["fused"], out["pytorch"]):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.fixture
def triton_calls(monkeypatch) -> tuple[str, list]:
    """The device (`triton_device`) and the kinds of the Triton layer kernels' calls, one entry per call:
    proof that they ran, not the fast PyTorch fallback."""
    device = triton_device()
    from kinn.kernels import triton_kan

    calls, apply = [], triton_kan._TritonJet.apply
    monkeypatch.setattr(triton_kan._TritonJet, "apply", lambda *a: calls.append(a[-1]) or apply(*a))
    return device, calls


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("kind", KINDS)
def test_triton_kernels_of_every_kind_equal_reference(triton_calls, kind, dtype, tol):
    """Values, first and second rows of the layer's jet and the gradients w.r.t. the input jet and every
    weight, for P = 1, 2, 3 (a "full" jet over 3 coordinates: 6 second rows, 8 rows a point in the kernels),
    one block of outputs and several (fan_out 70, the input gradient's loop over output blocks)."""
    from kinn.kernels.jets import sets

    device, calls = triton_calls
    for p, options in ((1, dict(order=3)), (2, dict(order=2, base=None, fan_out=70)), (3, dict(order=5))):
        layer = make_layer(dtype=dtype, device=device, **options)
        x = points(layer, n=20).to(dtype)
        gen = torch.Generator().manual_seed(p)
        J = torch.cat([x.unsqueeze(1), torch.randn(len(x), sets(p, kind) - 1, x.shape[1], generator=gen,
                                                   dtype=torch.float64).to(dtype)], 1).to(device)
        reference = stacked_and_gradients(layer, J, "reference", kind)
        assert_all_close(stacked_and_gradients(layer, J, "triton", kind), reference, tol)
        if device == "cuda":  # auto picks Triton for every kind
            assert_all_close(stacked_and_gradients(layer, J, "auto", kind), reference, tol)
    assert calls and set(calls) == {kind}, calls


def hessians_by_autograd(net, x: torch.Tensor) -> torch.Tensor:
    """(N, C, 2, 2): every output's whole Hessian in the points x (N, 2), by nested autograd."""
    x = x.detach().clone().requires_grad_(True)
    y = net(x)
    rows = []
    for c in range(y.shape[1]):
        (g,) = torch.autograd.grad(y[:, c].sum(), x, create_graph=True)
        rows.append(torch.stack([torch.autograd.grad(g[:, a].sum(), x, retain_graph=True)[0] for a in range(2)], 1))
    return torch.stack(rows, 1)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["fp64", "fp32"])
@pytest.mark.parametrize("kind", ["full", "first"])
def test_triton_kernels_carry_a_kan_through_plane_elasticity(triton_calls, kind, dtype, tol):
    """A KAN [2, 4, 4, 2] (tanh between layers) through its field handles on plane elasticity: the strong
    form's ∇·σ, of mixed second derivatives ∂²u/∂x∂y ("full" jets over D = 2), and the energy density ψ,
    of gradients only ("first"). The jet and every parameter's gradient of the loss equal the reference
    backend's; the "full" jet's Hessians equal nested autograd's."""
    device, calls = triton_calls
    from kinn.kernels.jets import Jet
    from kinn.pde import mechanics
    from kinn.pde.fields import Field, JetBackend
    from kinn.solvers.kan import KAN

    torch.manual_seed(3)
    net = KAN([2, 4, 4, 2], grid=GRID, grid_range=(LO, HI)).to(dtype=dtype, device=device)
    x = (torch.rand(33, 2, dtype=torch.float64) * 2 - 1).to(dtype=dtype, device=device)
    results = {}
    for backend in ("reference", "triton"):
        set_backend(backend)
        net.zero_grad(set_to_none=True)
        points = x.detach().clone().requires_grad_(True)
        jet = net.jet(Jet.seed(points, torch.ones(2, dtype=dtype, device=device), kind))
        u = Field(JetBackend(jet, points, nested=False), ("ux", "uy"), ("x", "y"), 2)
        if kind == "full":
            loss = mechanics.equilibrium(mechanics.stress(u, 1.0, 0.3), u).square().sum(1).mean()
        else:
            loss = mechanics.elastic_energy(u, 1.0, 0.3).mean()
        loss.backward()
        results[backend] = [jet.J.detach(), loss.detach(), *(p.grad for p in net.parameters())]
        assert jet.kind == kind
    assert_all_close(results["triton"], results["reference"], tol)
    assert calls and set(calls) == {kind}, calls  # every layer in Triton: the kernels of this kind
    if kind == "full" and dtype == torch.float64:
        set_backend("reference")
        H = Jet(results["triton"][0], "full", 2).H  # (N, C, 2, 2)
        assert_all_close([H], [hessians_by_autograd(net, x)], 1e-10)


def test_fused_tanh_jet_on_cpu_equals_the_rule_and_keeps_only_its_input():
    """The CPU node of `activation(..., fused=True)`: the rule's values and gradients, one saved tensor."""
    from kinn.kernels import jets

    J = torch.randn(30, 5, 7, dtype=torch.float64) * 2
    for kind, rows in (("diag", 5), ("first", 3), ("full", 6)):
        Jk = torch.randn(30, rows, 7, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(lambda J, kind=kind: jets._TanhJet.apply(J, 2, kind), (Jk,))
    J.requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        fused = jets.activation(jets.Jet(J), "tanh", fused=True).J
    assert len(saved) == 1 and saved[0] is J
    torch.testing.assert_close(fused, jets.activation(jets.Jet(J), "tanh").J, rtol=1e-14, atol=1e-14)


def compile_for_sm90(load_script, kernels) -> None:
    """Compile each (jit function, constants) of `kernels` for sm_90, float32, without a GPU: Triton's own
    compiler and bundled ptxas (`scripts/triton_compile.py`), which the interpreter never runs."""
    pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget

    script = load_script("triton_compile")
    for fn, constants in kernels:
        script.compile_kernel(fn, constants, torch.float32, GPUTarget("cuda", 90, 32), 4, 1)


@pytest.mark.parametrize("kind", KINDS)
def test_triton_tanh_kernels_compile_for_every_kind(load_script, kind):
    pytest.importorskip("triton")
    from kinn.kernels import triton_activation

    constants = dict(P=3, KIND=KINDS.index(kind), BN=32, BW=64)
    compile_for_sm90(load_script, [(triton_activation._forward, constants), (triton_activation._backward, constants)])


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_triton_layer_kernels_compile_for_every_kind(load_script, kind):
    pytest.importorskip("triton")
    from kinn.kernels import JetBasis, triton_kan

    shape = triton_kan.shape_constants(JetBasis("bspline", 3, 13, 10), 2, kind, 14, torch.float32)
    kernels = []
    for name, fn in (("forward", triton_kan._forward), ("inputs", triton_kan._backward_inputs),
                     ("weight", triton_kan._backward_weight)):
        config = triton_kan.first_config(name, shape, 64, 64, torch.float32)
        extra = dict(ONE_BLOCK=True) if name == "inputs" else {}
        kernels.append((fn, {**shape, **extra, **{k: config[k] for k in ("BN", "IB", "BO")}}))
    compile_for_sm90(load_script, kernels)


def test_triton_kernels_under_the_interpreter():
    pytest.importorskip("triton")
    if CUDA or INTERPRETED:
        pytest.skip("the Triton tests run in this process")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__]
    command += ["-k", "test_triton_ and not under_the_interpreter and not compile"]  # compiling: this process
    child = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stdout[-4000:] + child.stderr[-2000:]
    assert " passed" in child.stdout and "skipped" not in child.stdout, child.stdout[-2000:]
