"""The one exception type for mistakes a user can fix (bad names, bad input, bad files)."""
from __future__ import annotations

import difflib


class KinnError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits with status 2."""


def unknown(kind: str, name: str, valid) -> KinnError:
    """`unknown("problem", "poison2d", PROBLEMS)` -> "unknown problem 'poison2d' (did you mean ...?); valid: ..."."""
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return KinnError(f"unknown {kind} '{name}'{hint}; valid: {', '.join(valid)}")
