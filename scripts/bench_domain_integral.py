#!/usr/bin/env python
"""Time and accuracy of the inverse form's domain term (`kinn.forms.source.DomainIntegral`) at the held-out
points a run scores: poisson2d's −Δu = 2π² sin πx sin πy on the unit square, the scorer's 10,000 points
(10% within 0.001–0.01 of Γ).

    PYTHONPATH=$PWD python scripts/bench_domain_integral.py                  # ≈ 10 s on one core
    PYTHONPATH=$PWD python scripts/bench_domain_integral.py --save a.npz     # keep the values ...
    PYTHONPATH=$PWD python scripts/bench_domain_integral.py --against a.npz  # ... and compare another build's

Prints the CPU seconds (one thread: steady on a shared machine) of the domain term at the points (what
the scorer computes once: the value alone unless the form scores a derived quantity; with the gradient),
of the one at the BIE's collocation points, and the error of the representation formula fed the exact
boundary data plus the domain term, against the exact solution: max |u − u_exact| and the relative L2 of
u and ∇u.
"""
import argparse
import time

import numpy as np
import torch

from kinn import registry
from kinn.boundary import representation
from kinn.pde import geometry


def exact_data(form, problem):
    """(u, q) (M, 1) at the form's nodes from the exact solution."""
    x = torch.as_tensor(form.nodes.points, dtype=torch.float64).requires_grad_(True)
    u = problem.exact(x)[:, 0]
    (g,) = torch.autograd.grad(u.sum(), x)
    return u.detach().numpy()[:, None], (g.numpy() * form.nodes.normals).sum(1, keepdims=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-eval", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save", help="write the domain term's values to this .npz")
    ap.add_argument("--against", help="compare with the values a --save wrote")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    problem = registry.get_problem("poisson2d")
    form = problem.form("inverse")
    x = form.eval_points(a.n_eval, geometry.seed_stream(a.seed, "eval"))
    t = time.process_time()
    _ = form.system  # the BIE with the domain term at the collocation points
    t_bie = time.process_time() - t
    t = time.process_time()
    value = form.offset(x, derived=False).value  # what the scorer computes for a form scoring no derived quantity
    t_value = time.process_time() - t
    t = time.process_time()
    offset = form.offset(x)
    t_eval = time.process_time() - t
    assert np.array_equal(value, offset.value)
    rep = representation(form.boundary, form.kernel, x, n=form.n)
    field = form.interior(rep, *exact_data(form, problem), offset)
    xt = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
    u = problem.exact(xt)[:, 0]
    (grad,) = torch.autograd.grad(u.sum(), xt)
    u, grad = u.detach().numpy(), grad.numpy()
    print(f"{a.threads} thread(s), {len(x)} points; domain term at the points: {t_value:.2f} s (value), "
          f"{t_eval:.2f} s (value and gradient); at the BIE's collocation points, with the BIE's assembly: "
          f"{t_bie:.2f} s")
    print(f"exact boundary data + domain term: max |u error| {np.abs(field.value[:, 0] - u).max():.3e}, "
          f"rel L2 u {np.linalg.norm(field.value[:, 0] - u) / np.linalg.norm(u):.3e}, "
          f"rel L2 grad u {np.linalg.norm(field.derived - grad) / np.linalg.norm(grad):.3e}")
    if a.save:
        np.savez(a.save, x=x, value=offset.value, derived=offset.derived, bie=form.system.source)
    if a.against:
        ref = np.load(a.against)
        assert np.array_equal(ref["x"], x), "not the same points: same --n-eval and --seed"
        print(f"against {a.against}: max |Δ value| {np.abs(offset.value - ref['value']).max():.3e}, "
              f"max |Δ derived| {np.abs(offset.derived - ref['derived']).max():.3e} "
              f"(derived up to {np.abs(ref['derived']).max():.2f}), "
              f"max |Δ BIE source| {np.abs(form.system.source - ref['bie']).max():.3e}")


if __name__ == "__main__":
    main()
