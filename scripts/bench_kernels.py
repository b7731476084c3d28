"""Time one PINN step of a KAN by nested autograd and by jets, and the memory each keeps for its backward pass.

    python scripts/bench_kernels.py [--device cpu|cuda] [--batch N] [--width 64] [--grid 10] [--order 3]
                                    [--steps 5] [--threads T] [--profile]

A step: the forward pass and the residual, the Laplacian of the output over P = 2 coordinates (nested
autograd, or the jets' carried Hessian diagonals summed over p); loss = mean residual²; the backward pass
to the parameters. Two models, float32: one 64 x 64 layer, fed by a fixed smooth map of the coordinates
(tanh of an affine map) and its outputs summed into one field, and the net [2, 64, 64, 1] with tanh
between layers. Rows, for each model:

    MLP, nested autograd     the same-width tanh MLP (what the ratios are against), and by jets
    efficient-kan reference  Cox-de Boor bases, dense matmul, nested autograd (`use_reference(True)`)
    closed form, autograd    kinn's closed-form bases, nested autograd
    jets, <backend>          `KANLinear.jet` through every layer (`set_backend`): reference, fast, the
                             C kernels on CPU where a C compiler builds them, and triton where CUDA and
                             Triton are present

Prints the median step time over --steps rounds (rows interleaved, after one warm-up round; a row that
cannot run, as KAN jets for elasticity before they carried the whole Hessian, says why), the bytes
that autograd saves for the backward pass (distinct storages, by `saved_tensors_hooks`) and, on CUDA, the
peak memory allocated during a step above what was allocated before it, on CPU the median CPU time of a
step over all threads (which time spent waiting for a core on a busy machine does not inflate); ratios
are against the first row.
Then two steps on the net [2, 64, 64, 2] through kinn's own field handles and `kinn.mechanics` (the MLP and
the KAN by nested autograd, `AutogradBackend`, and the KAN by its jets, `JetBackend`, which carry what the
step asks for after the warm-up round): plane elasticity's strong form, loss = mean |∇·σ(u)|² over the
batch plus mean |σ·n − t|² over 512 boundary points (the whole Hessian: the KAN path before full jets was
the nested autograd row, as `auto` fell back to it), and an energy step, loss = mean ψ(u) = ½ σ:ε over the
batch minus the mean work t·u on the boundary points (first derivatives only), with plate_hole's hard
symmetry conditions u = x N as an output transform on every row (through the KAN's jets by forward mode,
`kinn.kernels.jets.transformed`).
Last, the C kernels alone: forward and backward of one 64 -> 64 and one 64 -> 1 layer for each jet kind.
With --profile, also the ten costliest kernels of each KAN jet row by torch.profiler (where the time goes).
Needs only torch (and triton for its rows): on a bare GPU machine, `pip install --no-deps --no-build-isolation -e .`.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from kinn import kernels, mechanics  # torch only: kinn loads deepxde lazily, for problems and solving
from kinn.kernels import jets
from kinn.pde.fields import AutogradBackend, Field, JetBackend
from kinn.solvers import kan

P = 2  # physical coordinates


@dataclass
class Row:
    name: str
    step: Callable[[], None]  # one PINN step: forward, residual, loss, backward to the parameters


def laplacian_by_autograd(field: Callable, c: torch.Tensor) -> torch.Tensor:
    """Σ_p d²u/dc_p², (N,), of the scalar field u = field(c) (N,), by nested autograd."""
    c = c.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(field(c).sum(), c, create_graph=True)  # (N, P)
    return sum(torch.autograd.grad(grad[:, p].sum(), c, create_graph=True)[0][:, p] for p in range(P))


def tanh_jet(x, gx, hx):
    """tanh through a jet: v' = t, g' = (1 - t²) g, h' = (1 - t²) h - 2t (1 - t²) g²."""
    t = torch.tanh(x)
    d1 = (1 - t * t).unsqueeze(-1)  # (N, W, 1)
    return t, d1 * gx, d1 * hx - 2 * t.unsqueeze(-1) * d1 * gx * gx


class Layer(torch.nn.Module):
    """One KAN layer behind a fixed smooth map of the coordinates, z = tanh(A c + b), outputs summed."""

    def __init__(self, width: int, grid: int, order: int):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.register_buffer("A", torch.randn(width, P, generator=gen))
        self.register_buffer("b", torch.randn(width, generator=gen) * 0.5)
        self.kan = kan.KANLinear(width, width, grid=grid, order=order)

    def field(self, c):  # (N, P) -> (N,)
        return self.kan(torch.tanh(c @ self.A.T + self.b)).sum(-1)

    def laplacian_by_jets(self, c):  # (N, P) -> (N,)
        g = self.A.expand(len(c), -1, -1)  # (N, W, P): the affine map's gradient, no curvature
        x, gx, hx = tanh_jet(c @ self.A.T + self.b, g, torch.zeros_like(g))
        _, _, hy = self.kan.jet(x, gx, hx)  # (N, W, P)
        return hy.sum((1, 2))


class Net(torch.nn.Module):
    """KAN [2, 64, 64, 1] with tanh between layers, as `kinn.solvers.kan.KAN` builds it."""

    def __init__(self, widths, grid: int, order: int):
        super().__init__()
        self.kan = kan.KAN(widths, grid=grid, order=order)

    def field(self, c):
        return self.kan(c).squeeze(-1)

    def laplacian_by_jets(self, c):  # kinn's own path: `KAN.jet` on stacked jets
        return self.kan.jet(jets.Jet.seed(c, torch.ones(P, dtype=c.dtype, device=c.device))).h.sum((1, 2))


class MLP(torch.nn.Module):
    """The same-width tanh MLP: behind the same coordinate map for the layer case (one 64 x 64 tanh layer,
    outputs summed), or the net [2, 64, 64, 1]; jets by `kinn.kernels.jets`."""

    def __init__(self, widths, mapped: Layer | None = None):
        super().__init__()
        self.mapped = mapped
        self.linears = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def field(self, c):
        x = torch.tanh(c @ self.mapped.A.T + self.mapped.b) if self.mapped is not None else c
        for i, lin in enumerate(self.linears):
            x = lin(torch.tanh(x) if i else x)
        return (torch.tanh(x) if self.mapped is not None else x).sum(-1)

    def laplacian_by_jets(self, c):
        if self.mapped is not None:
            g = self.mapped.A.expand(len(c), -1, -1)
            j = jets.Jet.from_parts(*tanh_jet(c @ self.mapped.A.T + self.mapped.b, g, torch.zeros_like(g)))
        else:
            j = jets.Jet.seed(c, torch.ones(P, dtype=c.dtype, device=c.device))
        for i, lin in enumerate(self.linears):
            j = jets.linear(jets.activation(j, "tanh") if i else j, lin.weight, lin.bias)
        if self.mapped is not None:
            j = jets.activation(j, "tanh")
        return j.h.sum((1, 2))


def mlp_rows(mlp: MLP, c: torch.Tensor) -> list[Row]:
    def step(laplacian):
        def run():
            mlp.zero_grad(set_to_none=True)
            (laplacian(c) ** 2).mean().backward()

        return run

    return [Row("MLP, nested autograd", step(lambda c: laplacian_by_autograd(mlp.field, c))),
            Row("MLP, jets", step(mlp.laplacian_by_jets))]


def rows_for(model: torch.nn.Module, c: torch.Tensor) -> list[Row]:
    def step(laplacian: Callable, reference: bool = False, backend: str = "auto"):
        def run():
            previous, previous_backend = kernels.use_reference(reference), kernels.set_backend(backend)
            try:
                model.zero_grad(set_to_none=True)
                (laplacian(c) ** 2).mean().backward()
            finally:
                kernels.use_reference(previous)
                kernels.set_backend(previous_backend)

        return run

    def nested(c):
        return laplacian_by_autograd(model.field, c)

    rows = [
        Row("efficient-kan reference, autograd", step(nested, reference=True)),
        Row("closed form, nested autograd", step(nested)),
        Row("jets, reference", step(model.laplacian_by_jets, backend="reference")),
        Row("jets, fast PyTorch", step(model.laplacian_by_jets, backend="fast")),
    ]
    if not c.is_cuda and kernels.native_kan.available():
        rows.append(Row("jets, native C", step(model.laplacian_by_jets, backend="native")))
    if c.is_cuda and importlib.util.find_spec("triton") is not None:
        rows.append(Row("jets, Triton", step(model.laplacian_by_jets, backend="triton")))
    return rows


E, NU = 1.0, 0.3  # plane stress; the load t = (1, 0) on the boundary points, normals n = (1, 0)


def field(backend) -> Field:
    return Field(backend, ("ux", "uy"), ("x", "y"), 2)


def elasticity_loss(u: Field, b: Field) -> torch.Tensor:
    """Mean |∇·σ|² inside plus mean |σ·n − t|² on the boundary points (plate_hole's strong form)."""
    r = mechanics.equilibrium(mechanics.stress(u, E, NU), u)
    n = torch.zeros(len(b), 2, dtype=r.dtype, device=r.device)
    n[:, 0] = 1
    t = mechanics.traction(mechanics.stress(b, E, NU), n) - n
    return r.square().sum(1).mean() + t.square().sum(1).mean()


def energy_loss(u: Field, b: Field) -> torch.Tensor:
    """Mean strain energy density inside minus the mean work of the load t = (1, 0) on the boundary."""
    return mechanics.elastic_energy(u, E, NU).mean() - b.values[:, 0].mean()


def symmetric(x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
    """plate_hole's hard symmetry conditions, u_x = x N_x, u_y = y N_y: the energy step's output transform."""
    return raw * x


def field_rows(mlp: torch.nn.Module, net: kan.KAN, c: torch.Tensor, cb: torch.Tensor, loss: Callable,
               transform: Callable | None = None) -> list[Row]:
    """One step of `loss` through field handles: MLP and KAN by nested autograd, the KAN by jets (native C
    and fast PyTorch; on CUDA Triton), which carry what the loss asks for after the first (warm-up) step.
    transform(x, raw): an output transform (hard conditions) on every model's output, on the jets by
    `kinn.kernels.jets.transformed`."""
    def by_autograd(model):
        def run():
            model.zero_grad(set_to_none=True)
            x, xb = c.detach().requires_grad_(True), cb.detach().requires_grad_(True)
            u, ub = ((model(y) if transform is None else transform(y, model(y))) for y in (x, xb))
            loss(field(AutogradBackend(u, x)), field(AutogradBackend(ub, xb))).backward()

        return run

    def by_jets(backend):
        def run():
            previous = kernels.set_backend(backend)
            try:
                net.zero_grad(set_to_none=True)
                handles = []
                for x in (c, cb):
                    x = x.detach().requires_grad_(True)
                    j = net.jet(jets.Jet.seed(x, torch.ones(P, dtype=x.dtype, device=x.device)))
                    j = j if transform is None else jets.transformed(transform, x.detach(), j)
                    handles.append(field(JetBackend(j, x, nested=False)))
                loss(*handles).backward()
            finally:
                kernels.set_backend(previous)

        return run

    rows = [Row("MLP, nested autograd", by_autograd(mlp)), Row("KAN closed form, nested autograd", by_autograd(net))]
    if not c.is_cuda and kernels.native_kan.available():
        rows.append(Row("KAN jets, native C", by_jets("native")))
    rows.append(Row("KAN jets, fast PyTorch", by_jets("fast")))
    if c.is_cuda and importlib.util.find_spec("triton") is not None:
        rows.append(Row("KAN jets, Triton", by_jets("triton")))
    return rows


def saved_mib(step: Callable[[], None]) -> float:
    """MiB of distinct storages that autograd saves for the backward pass during one step."""
    storages = {}

    def pack(t):
        try:
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        except RuntimeError:  # a functorch wrapper (forward mode through an output transform): no storage of its own
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(storages.values()) / 2**20


def peak_mib(step: Callable[[], None], device: torch.device) -> float:
    """MiB allocated at the peak of one step above what was allocated before it (CUDA only)."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def seconds(step: Callable[[], None], device: torch.device) -> tuple[float, float]:
    """Wall-clock and CPU seconds (all of the process's threads) of one step."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start, cpu = time.perf_counter(), time.process_time()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, time.process_time() - cpu


def report(title: str, rows: list[Row], device: torch.device, steps: int) -> None:
    failed = []
    for row in rows:  # the warm-up round (and compiles the Triton kernels); a row that cannot run says why
        try:
            row.step()
        except Exception as e:  # noqa: BLE001 -- e.g. NeedsAutograd from an older kinn's jets
            failed.append(f"  {row.name:36s} cannot run: {type(e).__name__}: {str(e)[:90]}")
    rows = [row for row in rows if not any(f.startswith(f"  {row.name} ") for f in failed)]
    times = {row.name: [] for row in rows}
    for _ in range(1, steps + 1):  # interleaved, so that load from elsewhere hits every row alike
        for row in rows:
            elapsed = seconds(row.step, device)
            times[row.name].append(elapsed)
    print(title)
    cpu = device.type == "cpu"  # CPU time too: on a shared machine, what waiting for a core does not inflate
    header = f"  {'':36s} {'ms/step':>9s} {'x MLP':>7s} {'vs eff-kan':>10s} {'saved MiB':>10s} {'x MLP':>7s}"
    print(header + (f" {'CPU ms':>9s} {'x MLP':>7s}" if cpu else f" {'peak MiB':>9s} {'x MLP':>7s}"))
    mlp = ref = None  # the MLP autograd row and the efficient-kan row: what the ratios are against
    for row in rows:
        ms, cpu_ms = (statistics.median(t) * 1e3 for t in zip(*times[row.name]))
        saved = saved_mib(row.step)
        third = cpu_ms if cpu else peak_mib(row.step, device)
        mlp = mlp or (ms, saved, third)
        ref = ref or (ms if row.name.startswith("efficient-kan") else None)
        vs_ref = f"{ref / ms:9.2f}x" if ref else f"{'-':>10s}"
        print(f"  {row.name:36s} {ms:9.2f} {ms / mlp[0]:6.2f}x {vs_ref} "
              f"{saved:10.1f} {saved / mlp[1]:6.2f}x {third:9.1f} {third / mlp[2]:6.2f}x")
    print("\n".join(failed)) if failed else None


def profile(rows: list[Row], device: torch.device) -> None:
    """The ten costliest operators of each jet row's step, by self time on the device (or CPU)."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    for row in rows:
        if "jets" in row.name and "MLP" not in row.name:
            row.step()  # warm, so that compilation stays out of the profile
            with torch_profile(activities=activities) as prof:
                row.step()
            print(f"--- {row.name}")
            print(prof.key_averages().table(sort_by=key, row_limit=10, max_name_column_width=60))


def kernel_times(width: int, grid: int, order: int, steps: int) -> None:
    """Forward and backward of the C kernels alone on one KAN layer, width -> width and width -> 1 (the narrow
    kernels), each jet kind over P = 2, the tanh between layers fused: median CPU ms over `steps` rounds."""
    print(f"C kernels of one layer (squash fused, P = {P}; median CPU ms forward / backward)")
    previous = kernels.set_backend("native")
    try:
        for fan_out in (width, 1):
            layer = kan.KANLinear(width, fan_out, grid=grid, order=order)
            cells = []
            for kind in jets.KINDS:
                S = jets.sets(P, kind)
                J = (torch.rand(4096, S, width) * 2 - 1).requires_grad_(True)
                gy = torch.randn(4096, S, fan_out)
                forward, backward = [], []
                for step in range(steps + 1):  # the first round warms up
                    start = time.process_time()
                    y = layer.stacked_jet(J, (0.0, 1.0), kind)
                    middle = time.process_time()
                    y.backward(gy)
                    if step:
                        forward.append(middle - start)
                        backward.append(time.process_time() - middle)
                cells.append(f"{kind} {statistics.median(forward) * 1e3:5.2f} / {statistics.median(backward) * 1e3:5.2f}")
            print(f"  {width} -> {fan_out:<3d} " + "   ".join(cells))
    finally:
        kernels.set_backend(previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, help="points per step (default 4096 on CPU, 65536 on CUDA)")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--grid", type=int, default=10)
    parser.add_argument("--order", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    parser.add_argument("--profile", action="store_true", help="also the costliest kernels of each jet row")
    parser.add_argument("--sections", default="layer,net,elasticity,energy,kernels",
                        help="which models and steps to time (comma-separated; default all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    batch = args.batch or (65536 if device.type == "cuda" else 4096)

    torch.manual_seed(2024)
    c = (torch.rand(batch, P, device=device) * 2 - 1)  # (N, P) float32 coordinates in [-1, 1]²
    w = args.width
    threads = f"{torch.get_num_threads()} threads"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else threads
    load = f", load average {os.getloadavg()[0]:.1f}" if device.type == "cpu" else ""
    print(f"G={args.grid}, k={args.order}, batch {batch}, float32, {device.type} ({where}{load}), "
          f"torch {torch.__version__}")
    sections = args.sections.split(",")
    if "layer" in sections:
        layer = Layer(w, args.grid, args.order).to(device)
        rows = mlp_rows(MLP([w, w], mapped=layer).to(device), c) + rows_for(layer, c)
        report(f"one layer {w}x{w} (ratios: x MLP against the MLP's autograd row)", rows, device, args.steps)
        if args.profile:
            profile(rows, device)
    if "net" in sections:
        net = Net([P, w, w, 1], args.grid, args.order).to(device)
        rows = mlp_rows(MLP([P, w, w, 1]).to(device), c) + rows_for(net, c)
        report(f"net [{P}, {w}, {w}, 1], tanh between layers (Laplacian)", rows, device, args.steps)
        if args.profile:
            profile(rows, device)
    cb = torch.rand(512, P, device=device) * 2 - 1  # the boundary points of the elasticity and energy steps
    for key, title, loss, transform in (
            ("elasticity", "plane elasticity, strong form (div sigma, tractions)", elasticity_loss, None),
            ("energy", "energy form (strain energy, load work; hard symmetry u = x N)", energy_loss, symmetric)):
        if key not in sections:
            continue
        torch.manual_seed(2025)  # a fresh KAN for each: its jets carry what this step asks for
        mlp2, kan2 = MLP([P, w, w, 2]).to(device), kan.KAN([P, w, w, 2], args.grid, args.order).to(device)
        layers = [m for lin in mlp2.linears[:-1] for m in (lin, torch.nn.Tanh())] + [mlp2.linears[-1]]
        rows = field_rows(torch.nn.Sequential(*layers), kan2, c, cb, loss, transform)
        report(f"net [{P}, {w}, {w}, 2], {title}", rows, device, args.steps)
        if args.profile:
            profile(rows, device)
    if "kernels" in sections and device.type == "cpu" and kernels.native_kan.available():
        kernel_times(w, args.grid, args.order, args.steps)


if __name__ == "__main__":
    main()
