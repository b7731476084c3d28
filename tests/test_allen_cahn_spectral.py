"""The spectral Allen–Cahn reference of tests/allen_cahn_spectral.py: convergence, boundary and initial
values, and the solution's shape at t = 1 (values confirmed by an independent finite-difference solve)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

# By path, so that the helper imports under any pytest import mode (tests/ is not a package).
_HELPER = Path(__file__).with_name("allen_cahn_spectral.py")
_spec = importlib.util.spec_from_file_location("allen_cahn_spectral", _HELPER)
allen_cahn_spectral = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(allen_cahn_spectral)
solve_allen_cahn = allen_cahn_spectral.solve_allen_cahn

DEGREES = (128, 256, 384, 512)
NX, NT = 401, 11  # x step 0.005, t step 0.1


@pytest.fixture(scope="module")
def solutions():
    return {n: solve_allen_cahn(n, NX, NT) for n in DEGREES}


def test_spectral_convergence(solutions):
    """Successive differences fall by > 50x per step and the two finest agree to < 1e-6
    (measured: 2.0e-2, 9.6e-5, 5.2e-7)."""
    diffs = [np.abs(solutions[a][2] - solutions[b][2]).max() for a, b in zip(DEGREES, DEGREES[1:])]
    decay = ", ".join(f"n={a}->{b}: {d:.1e}" for (a, b), d in zip(zip(DEGREES, DEGREES[1:]), diffs))
    print("Allen-Cahn max |u_n - u_next|:", decay)  # shown with pytest -s
    assert all(d1 > 50 * d2 for d1, d2 in zip(diffs, diffs[1:])), decay
    assert diffs[-1] < 1e-6, decay


def test_boundary_and_initial_values(solutions):
    x, t, u = solutions[DEGREES[-1]]
    assert u.shape == (NX, NT) and t[0] == 0.0 and t[-1] == 1.0
    np.testing.assert_array_equal(u[[0, -1], :], -1.0)
    np.testing.assert_allclose(u[:, 0], x**2 * np.cos(np.pi * x), atol=1e-12)


def test_time_integrators_agree():
    """BDF and Radau on the same Chebyshev grid: the difference is the time error only."""
    u_bdf = solve_allen_cahn(128, NX, NT, method="BDF")[2]
    u_radau = solve_allen_cahn(128, NX, NT, method="Radau")[2]
    assert np.abs(u_bdf - u_radau).max() < 1e-8


def test_shape_at_t1(solutions):
    """u(x, 1): -1 at the ends and at |x| = 0.75, plateaus ~ +0.987 at |x| = 0.25, interfaces through
    |x| ~ 0.5 and a dip to 0.275 at x = 0 (where u(x, 0) = x^2 cos(pi x) starts at the unstable zero).
    The values agree with a second-order finite-difference / BDF solve on 4001 and 8001 uniform points
    to 1e-5 (interface) and 1e-6 (elsewhere)."""
    x, _, u = solutions[DEGREES[-1]]
    u1 = u[:, -1]
    np.testing.assert_allclose(u1, u1[::-1], atol=1e-8)  # symmetric in x
    at = {p: u1[np.argmin(np.abs(x - p))] for p in (0.0, 0.25, 0.5, 0.75, 1.0)}
    expected = {0.0: 0.275326, 0.25: 0.987321, 0.5: -0.247501, 0.75: -0.999857, 1.0: -1.0}
    for p, value in expected.items():
        assert at[p] == pytest.approx(value, abs=1e-5), (p, at[p])
    assert 0.99 < u1.max() < 1.0 and u1.min() > -1.0 - 1e-3
    crossings = x[:-1][np.diff(np.sign(u1)) != 0]
    assert len(crossings) == 2 and np.all(np.abs(np.abs(crossings) - 0.5) < 0.02), crossings
