"""Which backend runs the KAN jet kernels: a process-wide switch (`set_backend`, or KINN_KERNELS from the
shell), read by `kinn.kernels.kan_jet` and `kinn.kernels.jets`. See `kinn.kernels.kan_jet` for the backends."""
from __future__ import annotations

import os

from kinn.errors import KinnError
from kinn.kernels.bspline import reference_enabled

BACKENDS = ("auto", "reference", "fast", "native", "triton")


def _initial_backend() -> str:
    """$KINN_KERNELS, else "auto": a backend chosen from the shell, `KINN_KERNELS=fast kinn solve ...`."""
    name = os.environ.get("KINN_KERNELS", "auto")
    if name not in BACKENDS:
        raise KinnError(f"KINN_KERNELS={name!r} is not a jet backend; valid: {', '.join(BACKENDS)}")
    return name


_BACKEND = _initial_backend()


def set_backend(name: str) -> str:
    """Choose how `kan_layer_jet` runs: "auto", "reference", "fast", "native" or "triton" (see the module
    docstring).

    A process-wide switch; returns the previous setting so that a caller can restore it. "triton" on CPU
    tensors needs Triton's interpreter (TRITON_INTERPRET=1 before the kernels are defined).
    """
    global _BACKEND
    if name not in BACKENDS:
        raise ValueError(f"unknown jet backend {name!r}; valid: {', '.join(BACKENDS)}")
    previous, _BACKEND = _BACKEND, name
    return previous


def get_backend() -> str:
    """The backend `set_backend` chose."""
    return _BACKEND


def use_reference_rules() -> bool:
    """Whether the plain reference rules must run: the "reference" backend or `use_reference(True)`."""
    return reference_enabled() or _BACKEND == "reference"
