"""The run directory: everything a run leaves behind, each file written atomically.

    config.toml    the resolved config; `kinn solve --config RUN/config.toml` re-runs it
    result.json    the summary (the same keys as `kinn solve --json`)
    history.json   one row per logged step: loss terms, learning rate, held-out errors, wall time
    fields.h5      evaluation points, predicted, reference and error fields
    fields.vtu     the same for ParaView (a point cloud of vertex cells)
    model.pt       checkpoint: network, optimiser and scheduler state, step, history, point-set draw
    figures/       fields.png (prediction, reference, error) and history.png (loss and error curves)
    failed.json    only after a failure: the error and what is left to resume from (see `RunDirectory`)
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from kinn.errors import KinnError


def atomic_write(path: Path, write) -> None:
    """Call `write(tmp_path)`, then rename over `path`: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _strict(obj):
    """NaN and infinities as null: JSON has no such numbers, and strict parsers reject them."""
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(_strict(obj), indent=1, default=float, allow_nan=False) + "\n")


def read_json(path: Path):
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise KinnError(f"{path.parent} is a file, not a kinn run directory")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise KinnError(f"{path} not found: is this a kinn run directory?") from None
    except (OSError, UnicodeDecodeError) as e:
        raise KinnError(f"{path} is unreadable: {e}") from None
    except json.JSONDecodeError as e:
        raise KinnError(f"{path} is not valid JSON: {e}") from None


def save_checkpoint(path: Path, state: dict) -> None:
    """{"model": state dict, ...} to `path`, atomically."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (FileNotFoundError, IsADirectoryError):
        raise KinnError(f"checkpoint {path} not found") from None
    except Exception as e:  # a truncated or foreign file
        raise KinnError(f"checkpoint {path} is unreadable: {e}") from None


def check_writable(run_dir: Path) -> None:
    """Refuse a run directory that could not be made or written (a file in the way, no permission), before
    any work is done rather than after it."""
    existing = Path(run_dir).resolve()
    while not existing.exists():
        existing = existing.parent
    if existing == Path(run_dir).resolve() and not existing.is_dir():
        raise KinnError(f"the run directory {run_dir} is a file")
    if not existing.is_dir():
        raise KinnError(f"cannot make the run directory {run_dir}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise KinnError(f"cannot write the run directory {run_dir}: {existing} is not writable")


class RunDirectory:
    """A run directory while its run trains, as a context manager. What it guarantees:

    - it is made (with config.toml) only on entering, after every check of the input has passed;
      entering also removes the temporary files a killed write left (`.NAME.*.tmp`);
    - on leaving with an error (or an interruption no checkpoint was written for), a directory with no
      checkpoint is removed if this run made it; one with a checkpoint keeps it, loses result.json (it
      would describe an earlier state) and gains failed.json with the error, and `kinn solve --resume`
      continues from the checkpoint;
    - on leaving normally an earlier failed.json is removed: result.json is written last by the scorer.
    `path` None (no run directory, or a rank other than 0) makes every method a no-op.
    """

    def __init__(self, path: Path | None, config: str, resumed: bool):
        self.path, self.config, self.resumed, self.made = path, config, resumed, False

    def __enter__(self) -> RunDirectory:
        if self.path is None:
            return self
        self.made = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.rglob(".*.tmp"):  # a write killed with kill -9
            stale.unlink()
        if not self.resumed:  # a new run under an old run's name replaces it: nothing of the old one may stay
            for old in ("model.pt", "result.json", "history.json", "failed.json"):
                (self.path / old).unlink(missing_ok=True)
        if not self.resumed or (self.path / "config.toml").read_text() != self.config:
            write_text(self.path / "config.toml", self.config)  # a resume's changes are written too
        return self

    def checkpoint(self, state: dict) -> None:
        if self.path is not None:
            save_checkpoint(self.path / "model.pt", state)

    def __exit__(self, kind, error, tb) -> None:
        if self.path is None:
            return
        if kind is None:
            (self.path / "failed.json").unlink(missing_ok=True)
        elif not (self.path / "model.pt").exists():
            if self.made:
                shutil.rmtree(self.path, ignore_errors=True)
        else:
            (self.path / "result.json").unlink(missing_ok=True)
            reason = str(error) if isinstance(error, KinnError) else f"{kind.__name__}: {error}"
            write_json(self.path / "failed.json", {
                "error": reason, "resume": f"kinn solve --resume {self.path} (from the checkpoint in model.pt; "
                                           "--lr, --steps, --lbfgs may change)"})
            if isinstance(error, KinnError):
                raise KinnError(f"{error}; {self.path} keeps its last finite checkpoint: continue with kinn solve "
                                f"--resume {self.path} (e.g. with a lower --lr)") from None


def write_fields(run_dir: Path, x: np.ndarray, pred: np.ndarray, ref: np.ndarray | None, fields, coords) -> None:
    """fields.h5 and fields.vtu on the evaluation points (with the reference and the error where given)."""
    import h5py
    import meshio

    def h5(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["layout"] = "points"
            f.attrs["coord_names"] = ",".join(coords)
            f.create_dataset("points", data=x)
            for k, name in enumerate(fields):
                f.create_dataset(f"fields/{name}", data=pred[:, k])
                if ref is not None:
                    f.create_dataset(f"reference/{name}", data=ref[:, k])
                    f.create_dataset(f"error/{name}", data=pred[:, k] - ref[:, k])

    atomic_write(run_dir / "fields.h5", h5)
    pts = np.zeros((len(x), 3))
    pts[:, : min(3, x.shape[1])] = x[:, :3]
    data = {}
    for k, name in enumerate(fields):
        data[name] = pred[:, k]
        if ref is not None:
            data[f"{name}_reference"], data[f"{name}_error"] = ref[:, k], pred[:, k] - ref[:, k]
    mesh = meshio.Mesh(pts, [("vertex", np.arange(len(x)).reshape(-1, 1))], point_data=data)
    atomic_write(run_dir / "fields.vtu", lambda tmp: meshio.write(tmp, mesh, file_format="vtu"))
