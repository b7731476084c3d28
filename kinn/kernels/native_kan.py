"""The fused jet of a KAN layer for the CPU: C compiled on first use, called through ctypes.

The CPU counterpart of `kinn.kernels.triton_kan`: `native_kan.c` builds, point by point, the k + 1
active B-splines of every input and silu (SIMD over the inputs), and contracts them with their rows of
the (I, D, O) weight only (SIMD over blocks of outputs), in the forward pass and in both halves of the
backward pass; the tanh between KAN layers is applied on the way in. The PyTorch "fast" path contracts dense rows
of G + k + 1 columns, most of them zero, and moves the feature tensors through memory several times; on
a CPU that memory traffic, not the arithmetic, is what a step costs.

Building: the system C compiler ($CC, else cc, gcc or clang) with -O3 -march=native, once per source,
compiler and CPU; the library is cached in $KINN_CACHE (default ~/.cache/kinn) and written atomically,
so processes that start together do not read a half-written file. Where no compiler works,
`available()` is False with the reason in `why_unavailable()`, and `kinn.kernels.kan_jet` runs the
"fast" PyTorch path instead.

Threads: the points are cut into torch.get_num_threads() pieces, which the C side runs in parallel with
OpenMP, on the same thread team as torch's own operations (a second thread pool would fight torch's
spinning OpenMP threads for the cores: 63 against 40 ms a step of the benchmark's net on two cores); each
piece adds its weight gradient to its own buffer, summed after.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from kinn.kernels.bspline import uniform_bspline_polynomials
from kinn.kernels.jets import coordinates

SOURCE = Path(__file__).with_name("native_kan.c")

def _cpu() -> str:
    """The CPU's model and feature flags (what -march=native compiles for), best effort."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "|".join(sorted({ln for ln in lines if ln.startswith(("model name", "flags"))}))
    except OSError:
        return platform.processor()


# bytes of the SIMD blocks the outputs are cut into (and padded to): a 512-bit register where the CPU has them
# (one 64 x 64 layer, "diag", float32, on an AVX-512 EPYC: forward 12.6 -> 8.1 ms, backward 26 -> 18 ms)
BLOCK = 64 if " avx512f " in f" {_cpu().replace('|', ' ')} " else 32
# -ffp-contract=fast: fused multiply-adds, which ISO C mode otherwise forbids across statements
FLAGS = ["-O3", "-march=native", "-std=c11", "-ffp-contract=fast", "-shared", "-fPIC", f"-DVB={BLOCK}"]
# -fopenmp: the pieces of the points in parallel, on torch's own OpenMP threads (the library resolves
# libgomp to the copy torch has loaded); else -fopenmp-simd, the `omp simd` loops only, one thread
OPENMP = (["-fopenmp"], ["-fopenmp-simd"])
_MAX_ORDER, _MAX_COORDINATES = 7, 8  # MAXK - 1 and (MAXS - 1) / 2 in the C source


def available() -> bool:
    """Whether the C kernels are built (building them at the first call)."""
    return isinstance(_library(), ctypes.CDLL)


def why_unavailable() -> str:
    """Why the C kernels could not be built ("" when they are)."""
    lib = _library()
    return "" if isinstance(lib, ctypes.CDLL) else lib


def supports(basis, p: int) -> bool:
    """Whether the C kernels handle this basis and number of coordinates."""
    return basis.name == "bspline" and basis.uniform and basis.order <= _MAX_ORDER and p <= _MAX_COORDINATES


KINDS = {"first": 0, "diag": 1, "full": 2}  # the C side's codes of `kinn.kernels.jets.KINDS`


def native_stacked_jet(J, weight, basis, squash: tuple[float, float] | None = None, kind: str = "diag") -> torch.Tensor:
    """The stacked jet J (N, S, I) of the given kind (`kinn.kernels.jets`), weight (O, I, D) -> the jet (N, S, O).

    As `kinn.kernels.triton_kan.triton_stacked_jet`: a uniform-grid B-spline basis, float32 or float64,
    differentiable (first order) in J and weight. squash = (a, b): the layer reads a + b tanh(J) (jet-wise)
    instead of J, the activation between KAN layers, fused into the kernels.
    """

    p = coordinates(J.shape[1], kind)
    if not supports(basis, p):
        raise ValueError(f"the C jet kernels handle uniform B-splines of order <= {_MAX_ORDER} and at most "
                         f"{_MAX_COORDINATES} coordinates; got {basis.name}, order {basis.order}, P = {p}")
    if J.device.type != "cpu" or J.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the C jet kernels take float32 or float64 CPU tensors, not {J.dtype} on {J.device}")
    if not available():
        raise RuntimeError(f"the C jet kernels could not be built: {why_unavailable()}")
    return _NativeJet.apply(J, weight, basis, squash, p, kind)


class _NativeJet(torch.autograd.Function):
    """Forward and backward kernels as one autograd node; keeps the stacked input jet and the weight."""

    @staticmethod
    def forward(ctx, J, weight, basis, squash, p, kind):
        J = J.detach().contiguous()  # (N, S, I)
        fan_out = len(weight)
        narrow = _narrow(fan_out, J)
        if narrow:  # (O, D, I): an input's rows are gathered lane by lane
            wt = weight.detach().permute(0, 2, 1).contiguous()
        else:  # (I, D, O'): an input's rows are one block
            wt = _padded(weight.detach().permute(1, 2, 0))
        jet = J.new_empty(len(J), J.shape[1], fan_out if narrow else wt.shape[2])
        _run("kan_jet_narrow_forward" if narrow else "kan_jet_forward", J, wt, narrow, basis, squash, p, kind, [],
             [jet], _chunks(len(J)))
        ctx.save_for_backward(J, wt)
        ctx.basis, ctx.squash, ctx.p, ctx.kind, ctx.narrow = basis, squash, p, kind, narrow
        return jet[..., :fan_out]

    @staticmethod
    def backward(ctx, grad):
        J, wt = ctx.saved_tensors
        want_inputs, want_weight, narrow = *ctx.needs_input_grad[:2], ctx.narrow
        fan_out = grad.shape[2]
        grad = grad.contiguous() if narrow else _padded(grad)
        gj = torch.empty_like(J) if want_inputs else None
        chunks = _chunks(len(J))
        gw = wt.new_zeros(chunks, *wt.shape) if want_weight else None
        _run("kan_jet_narrow_backward" if narrow else "kan_jet_backward", J, wt, narrow, ctx.basis, ctx.squash, ctx.p,
             ctx.kind, [grad], [gj, gw], chunks)
        if want_weight:
            gw = gw.sum(0).permute(0, 2, 1) if narrow else gw.sum(0)[..., :fan_out].permute(2, 0, 1)
        return gj, gw, None, None, None, None


def _narrow(fan_out: int, J: torch.Tensor) -> bool:
    """Whether the outputs fill at most a quarter of a SIMD block: then the narrow kernels, SIMD over the inputs
    (one 64 -> O layer, float32, 16 lanes: 2.4 + 5.7 ms forward + backward for O = 1 against 3.6 + 9.9 by
    blocks, 4.4 + 8.4 for O = 4; scripts/bench_kernels.py's machine)."""
    return 4 * fan_out * J.element_size() <= BLOCK


def _padded(t: torch.Tensor) -> torch.Tensor:
    """t contiguous, its last (output) dimension zero-padded to whole SIMD blocks of BLOCK bytes."""
    lanes = BLOCK // t.element_size()
    pad = -t.shape[-1] % lanes
    return torch.nn.functional.pad(t, (0, pad)) if pad else t.contiguous()


def _chunks(n: int) -> int:
    """Pieces of the points: one a thread of torch's, of at least 64 points."""
    return max(1, min(torch.get_num_threads(), n // 64))


def _run(kernel: str, J, wt, narrow: bool, basis, squash, p: int, kind: str, inputs: list, outputs: list,
         chunks: int) -> None:
    """Call `kernel` on all points, in `chunks` pieces that the C side runs in parallel (OpenMP); wt is
    (O, D, I) for the narrow kernels, else (I, D, O')."""
    lib, real = _library(), ctypes.c_float if J.dtype == torch.float32 else ctypes.c_double
    fn = getattr(lib, f"{kernel}_all_{'f32' if J.dtype == torch.float32 else 'f64'}")
    n, s, fan_in = J.shape
    fan_out = wt.shape[0] if narrow else wt.shape[2]
    shape = [n, chunks, p, KINDS[kind], fan_in, fan_out, basis.grid, basis.order + 1, wt.shape[1]]
    squash = squash or (0.0, 0.0)  # b = 0: none
    reals = [real(v) for v in (basis.lo, basis.grid / (basis.hi - basis.lo), *squash)]
    table = _table(basis.grid, basis.order, basis.lo, basis.hi, J.dtype)
    out = [ctypes.c_void_p(t.data_ptr() if t is not None else None) for t in outputs]
    fn(_ptr(J), _ptr(wt), _ptr(table), *reals, *map(_ptr, inputs), *map(ctypes.c_int64, shape), *out)


def _ptr(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


@functools.lru_cache(maxsize=64)
def _table(grid: int, order: int, lo: float, hi: float, dtype) -> torch.Tensor:
    # keyed by the grid's numbers, not the basis, whose knots tensor a cache would keep alive
    return uniform_bspline_polynomials(grid, order, lo, hi, 3, dtype).contiguous()


@functools.lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | str:
    """The built library, or the reason it could not be built."""
    compiler = os.environ.get("CC") or next(filter(shutil.which, ("cc", "gcc", "clang")), None)
    if compiler is None or shutil.which(compiler) is None:
        return f"no C compiler found (set $CC; tried {os.environ.get('CC') or 'cc, gcc, clang'})"
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, compiler.encode(), " ".join(FLAGS).encode(), str(OPENMP).encode(),
                                     platform.machine().encode(), _cpu().encode()])).hexdigest()[:16]
    cache = Path(os.environ.get("KINN_CACHE", Path.home() / ".cache" / "kinn"))
    target = cache / f"native_kan-{key}.so"
    if not target.exists():
        try:
            cache.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=cache)
            os.close(fd)
            for openmp in OPENMP:
                run = subprocess.run([compiler, *FLAGS, *openmp, str(SOURCE), "-o", tmp], capture_output=True,
                                     text=True)
                if run.returncode == 0:
                    break
            else:
                os.unlink(tmp)
                return f"{compiler} failed: {run.stderr.strip()[-2000:]}"
            os.replace(tmp, target)  # atomic: a process starting now sees no file or the whole one
        except OSError as e:
            return f"cannot build in {cache}: {e}"
    lib = ctypes.CDLL(str(target))
    for name, extra, outs in (("kan_jet_forward_all", 0, 1), ("kan_jet_backward_all", 1, 2),  # GY in; Y or GJ, GW out
                              ("kan_jet_narrow_forward_all", 0, 1), ("kan_jet_narrow_backward_all", 1, 2)):
        for suffix, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes = [ctypes.c_void_p] * 3 + [real] * 4 + [ctypes.c_void_p] * extra + [ctypes.c_int64] * 9 \
                + [ctypes.c_void_p] * outs
            fn.restype = None
    return lib

