"""Ctrl-C and SIGTERM, held until the run is at a consistent point.

Inside `held()` a SIGINT or SIGTERM does not raise where it lands: it is remembered, and raised as
`Interrupted` at the next `check()` or on entering an `interruptible()` window. The training loop holds
signals everywhere except in windows that change nothing a checkpoint stores (the loss and backward pass;
an L-BFGS chunk, which it undoes), so a checkpoint written after an interruption is always a snapshot of
one consistent moment. Handlers can only be set from the main thread; elsewhere signals are not held.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) or SIGTERM; `signum` says which, so the CLI exits with 128 + signum."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signum_of(e: KeyboardInterrupt) -> int:
    """The signal behind an interruption (a bare KeyboardInterrupt is Ctrl-C)."""
    return e.signum if isinstance(e, Interrupted) else int(signal.SIGINT)


class _State:
    depth = 0          # nested held() blocks
    open = 0           # nested interruptible() windows inside them
    pending = 0        # a signal that arrived while held (0: none)
    previous: dict = {}


def _handler(signum, frame):
    if _State.open:
        raise Interrupted(signum)
    _State.pending = _State.pending or signum


@contextmanager
def held():
    """Hold SIGINT and SIGTERM for the block (re-entrant). A signal still pending when the outermost
    block ends is raised there, unless the block is ending with an exception already."""
    main = threading.current_thread() is threading.main_thread()
    if main and _State.depth == 0:
        _State.previous = {s: signal.signal(s, _handler) for s in SIGNALS}
        _State.pending, _State.open = 0, 0
    _State.depth += main
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        _State.depth -= main
        if main and _State.depth == 0:
            for s, h in _State.previous.items():
                signal.signal(s, h)
            pending, _State.pending = _State.pending, 0
            if pending and not failed:
                raise Interrupted(pending)


def check() -> None:
    """Raise a held signal now (the caller is at a consistent point)."""
    if _State.pending:
        pending, _State.pending = _State.pending, 0
        raise Interrupted(pending)


def take() -> int:
    """The held signal (0: none), which is then no longer pending."""
    pending, _State.pending = _State.pending, 0
    return pending


@contextmanager
def interruptible():
    """A window in which a signal raises where it lands (a held one raises on entry)."""
    check()
    _State.open += 1
    try:
        yield
    finally:
        _State.open -= 1
