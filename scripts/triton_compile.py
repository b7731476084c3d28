"""Compile kinn's Triton kernels for a GPU architecture on a machine without a GPU, for every jet kind.

    python scripts/triton_compile.py [--arch 90] [--coordinates 2,3] [--width 64] [--grid 10] [--order 3]

The KAN layer's three jet kernels (`kinn.kernels.triton_kan`: forward, backward to the input jet, backward
to the weight) at the configuration they first launch with, and the fused tanh between layers
(`kinn.kernels.triton_activation`), each for the kinds "first", "diag" and "full", float32 and float64,
through Triton's compiler and the ptxas it bundles. Prints each kernel's compile time and shared memory
per block; above the GPU's limit (about 227 KiB on an H100 or H200) `triton_kan._launch` shrinks the
configuration at its first launch. What the tests' interpreter (TRITON_INTERPRET=1) cannot check: that
the compiler accepts the kernels. It measures neither speed nor results on a GPU.
"""
from __future__ import annotations

import argparse
import time

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from kinn.kernels import JetBasis, jets, triton_activation, triton_kan

POINTERS = {"J", "w_ptr", "table", "locator", "grad_ptr", "out_ptr", "out", "grad"}


def compile_kernel(fn, constants: dict, dtype: torch.dtype, target: GPUTarget, warps: int, stages: int):
    """The compiled kernel: pointer arguments to `dtype`, the other runtime arguments int32."""
    element = "*fp64" if dtype == torch.float64 else "*fp32"
    names = fn.arg_names
    signature = {n: "constexpr" if n in constants else element if n in POINTERS else "i32" for n in names}
    source = ASTSource(fn=fn, signature=signature, constexprs={(names.index(k),): v for k, v in constants.items()})
    return triton.compile(source, target=target, options=dict(num_warps=warps, num_stages=stages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, help="CUDA compute capability x 10 (90: H100, H200)")
    parser.add_argument("--coordinates", default="2,3", help="numbers of coordinates P (comma-separated)")
    parser.add_argument("--width", type=int, default=64, help="the layer's inputs and outputs")
    parser.add_argument("--grid", type=int, default=10)
    parser.add_argument("--order", type=int, default=3)
    args = parser.parse_args()
    target = GPUTarget("cuda", args.arch, 32)
    basis = JetBasis("bspline", args.order, args.grid + args.order, args.grid)
    print(f"Triton {triton.__version__}, sm_{args.arch}, layer {args.width} -> {args.width}, G = {args.grid}, "
          f"k = {args.order}, base branch")
    print(f"  {'kernel':22s} {'kind':5s} {'P':>2s} {'dtype':8s} {'compile s':>9s} {'shared KiB':>10s}  config")
    failed = 0
    for dtype in (torch.float32, torch.float64):
        for p in map(int, args.coordinates.split(",")):
            for kind in jets.KINDS:
                shape = triton_kan.shape_constants(basis, p, kind, basis.num_bases + 1, dtype)
                kernels = [(f"triton_kan.{name}", fn, triton_kan.first_config(name, shape, args.width, args.width, dtype),
                            dict(ONE_BLOCK=True) if name == "inputs" else {})
                           for name, fn in (("forward", triton_kan._forward), ("inputs", triton_kan._backward_inputs),
                                            ("weight", triton_kan._backward_weight))]
                kernels += [(f"triton_activation.{name}", fn, dict(BN=triton_activation._BN, BW=triton_activation._BW,
                                                                   num_warps=4, num_stages=1), {})
                            for name, fn in (("forward", triton_activation._forward),
                                             ("backward", triton_activation._backward))]
                for name, fn, config, extra in kernels:
                    config = dict(config)
                    warps, stages = config.pop("num_warps"), config.pop("num_stages")
                    constants = {k: v for k, v in {**shape, **config, **extra}.items() if k in fn.arg_names}
                    start = time.perf_counter()
                    try:
                        kernel = compile_kernel(fn, constants, dtype, target, warps, stages)
                    except Exception as e:  # noqa: BLE001 -- report every kernel, then fail
                        failed += 1
                        print(f"  {name:22s} {kind:5s} {p:2d} {str(dtype)[6:]:8s} FAILED {type(e).__name__}: {e}")
                        continue
                    shown = ", ".join(f"{k}={v}" for k, v in config.items()) + f", warps {warps}, stages {stages}"
                    print(f"  {name:22s} {kind:5s} {p:2d} {str(dtype)[6:]:8s} {time.perf_counter() - start:9.1f} "
                          f"{kernel.metadata.shared / 1024:10.0f}  {shown}", flush=True)
    if failed:
        raise SystemExit(f"{failed} kernels failed to compile")


if __name__ == "__main__":
    main()
