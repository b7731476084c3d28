"""The arithmetic floor of a KAN energy step on the CPU: multiply-adds per point and edge, KAN C kernels vs MLP.

    python scripts/kan_floor.py [--threads 1] [--width 64] [--order 3]

Counts, for the [2, W, W, 2] energy step of `scripts/bench_kernels.py` ("first" jets, P = 2, batch 4,096 plus
512 boundary points), the multiply-adds that the MLP's matmuls do on its W x W layer (torch.profiler's FLOP
count of one nested-autograd step) and those that the C kernels (`kinn/kernels/native_kan.c`) do per edge of
the KAN's W x W layer: forward_block and backward_edge, one SIMD operation per output lane and active column
(k + 1 B-splines and silu). Then times this machine's sgemm on the same shapes, and prints the KAN layer's
time at that rate: a lower bound for the KAN step, which has two more layers, the jets' Python and the
energy besides.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
import bench_kernels as bk  # noqa: E402
from kinn.solvers import kan  # noqa: E402

P, N, NB = 2, 4096, 512  # coordinates, points, boundary points of the benchmark's energy step


def kan_madds(order: int) -> tuple[int, int]:
    """Multiply-adds per point, edge and output of the C kernels' "first" jet (forward, backward with the
    input gradient): C = k + 2 columns (k + 1 B-splines, silu), as forward_block and backward_edge run them."""
    C = order + 2
    forward = 2 * C + 1 + P  # phi_0, phi_1 over the columns; y_0 += phi_0; y_p += q_p phi_1
    backward = P + 2 * C + 2 * C + 3 + P  # a_1; GW rows; phi_1, phi_2; dx; dg_p
    return forward, backward


def mlp_madds(width: int) -> float:
    """Multiply-adds per point and edge of the MLP's W x W layer in one energy step (profiler FLOPs / 2)."""
    torch.manual_seed(0)
    c, cb = torch.rand(N, P) * 2 - 1, torch.rand(NB, P) * 2 - 1
    mlp = bk.MLP([P, width, width, 2])
    seq = torch.nn.Sequential(mlp.linears[0], torch.nn.Tanh(), mlp.linears[1], torch.nn.Tanh(), mlp.linears[2])
    step = bk.field_rows(seq, kan.KAN([P, width, width, 2]), c, cb, bk.energy_loss, bk.symmetric)[0].step
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
        step()
    def square(shapes) -> bool:  # a product through the W x W weight: (n, W) @ (W, W) or its gradient (W, n) @ (n, W)
        mats = [s for s in shapes if len(s) == 2]
        return [width, width] in mats or (len(mats) == 2 and mats[0][0] == width and mats[1][1] == width)

    flops = sum(e.flops for e in prof.key_averages(group_by_input_shape=True) if e.flops and square(e.input_shapes))
    return flops / 2 / (N + NB) / width**2


def sgemm_rate(width: int) -> float:
    """Multiply-adds per second of torch's (N, W) @ (W, W) matmul on this machine (best of 5 rounds)."""
    a, b = torch.randn(N, width), torch.randn(width, width)
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(50):
            torch.mm(a, b)
        best = min(best, (time.process_time() - start) / 50)
    return N * width * width / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--order", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    w = args.width
    forward, backward = kan_madds(args.order)
    mlp, rate = mlp_madds(w), sgemm_rate(w)
    edges = (N + NB) * w * w
    print(f"{w} x {w} layer of the [2, {w}, {w}, 2] energy step, {N} + {NB} points, {args.threads} thread(s)")
    print(f"  multiply-adds per point and edge: MLP {mlp:.1f}, KAN C kernels {forward} + {backward} = "
          f"{forward + backward} ({(forward + backward) / mlp:.1f}x)")
    print(f"  sgemm on (N, {w}) @ ({w}, {w}): {rate / 1e9:.1f} G multiply-adds/s")
    print(f"  at that rate: MLP layer {edges * mlp / rate * 1e3:.2f} ms, KAN layer "
          f"{edges * (forward + backward) / rate * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
