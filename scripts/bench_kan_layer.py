"""Time one PINN step (forward, Laplacian by nested autograd, backward) of a KAN: closed form vs Cox-de Boor.

    python scripts/bench_kan_layer.py [--batch 4096] [--widths 2 64 64 1] [--grid 10] [--order 3]
                                      [--steps 5] [--device cpu]

Prints the median step time of each path and their ratio; asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from kinn.kernels import use_reference
from kinn.solvers.kan import KAN


def pinn_step(net: KAN, x: torch.Tensor) -> None:
    """Forward, the Laplacian of the output by nested autograd, and the backward pass of its mean square."""
    x = x.detach().requires_grad_(True)
    u = net(x)  # (N, 1)
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)  # (N, d)
    laplacian = sum(
        torch.autograd.grad(grad[:, d].sum(), x, create_graph=True)[0][:, d] for d in range(x.shape[1])
    )
    net.zero_grad(set_to_none=True)
    (laplacian**2).mean().backward()


def step_time(net: KAN, x: torch.Tensor, reference: bool) -> float:
    """Seconds of one `pinn_step` on the closed form or, with `reference`, on Cox-de Boor."""
    previous = use_reference(reference)
    try:
        start = time.perf_counter()
        pinn_step(net, x)
        if x.is_cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - start
    finally:
        use_reference(previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--widths", type=int, nargs="+", default=[2, 64, 64, 1])
    parser.add_argument("--grid", type=int, default=10)
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    torch.manual_seed(2024)
    net = KAN(args.widths, grid=args.grid, order=args.order).to(args.device)  # float32
    x = torch.rand(args.batch, args.widths[0], device=args.device) * 2 - 1
    times = {False: [], True: []}
    for i in range(args.steps + 1):  # alternate the paths, so that load from elsewhere hits both alike
        for reference in (False, True):
            elapsed = step_time(net, x, reference)
            if i:  # the first round warms up
                times[reference].append(elapsed)
    fast, reference = statistics.median(times[False]), statistics.median(times[True])
    print(f"KAN {args.widths}, G={args.grid}, k={args.order}, batch {args.batch}, float32, {args.device}, "
          f"{torch.get_num_threads()} threads")
    print(f"closed form   {fast * 1e3:8.1f} ms/step")
    print(f"Cox-de Boor   {reference * 1e3:8.1f} ms/step")
    print(f"speed-up      {reference / fast:8.2f}x")


if __name__ == "__main__":
    main()
