"""The run directory: everything a run leaves behind, each file written atomically.

    config.toml    the resolved config; `kinn solve --config RUN/config.toml` re-runs it
    result.json    the summary (the same keys as `kinn solve --json`)
    history.json   one row per logged step: loss terms, learning rate, held-out errors, wall time
    fields.h5      evaluation points, predicted, reference and error fields
    fields.vtu     the same for ParaView (a point cloud of vertex cells)
    model.pt       checkpoint: network, optimiser and scheduler state, step, history, point-set draw
    figures/       fields.png (prediction, reference, error) and history.png (loss and error curves)
"""
from __future__ import annotations

import json
import os
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


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1, default=float) + "\n")


def read_json(path: Path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KinnError(f"{path} not found: is this a kinn run directory?") from None
    except json.JSONDecodeError as e:
        raise KinnError(f"{path} is not valid JSON: {e}") from None


def save_checkpoint(path: Path, state: dict) -> None:
    """{"model": state dict, ...} to `path`, atomically."""
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise KinnError(f"checkpoint {path} not found") from None
    except Exception as e:  # a truncated or foreign file
        raise KinnError(f"checkpoint {path} is unreadable: {e}") from None


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
