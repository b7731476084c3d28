"""The one definition of the relative L2 error, ‖pred − ref‖ / ‖ref‖, for numpy arrays and torch tensors."""
from __future__ import annotations

import numpy as np
import torch


def relative_l2(pred, ref, axis: int | None = None):
    """‖pred − ref‖ / ‖ref‖, for numpy arrays or torch tensors.

    axis: None, over all entries (a float for numpy, a 0-d tensor for torch); an integer k, over axis k and
          every axis after it, one error per leading index (per sample of a batch (B, C, *grid) with k = 1).
    Where ‖ref‖ is 0 the absolute ‖pred − ref‖ is returned (torch: divided by the dtype's smallest positive
    number), so a zero reference never gives NaN.
    """
    if torch.is_tensor(pred):
        diff, norm = pred - ref, ref
        if axis is not None:
            diff, norm = diff.flatten(axis).norm(dim=axis), norm.flatten(axis).norm(dim=axis)
        else:
            diff, norm = diff.norm(), norm.norm()
        return diff / norm.clamp_min(torch.finfo(ref.dtype).tiny)
    pred, ref = np.asarray(pred), np.asarray(ref)
    if axis is None:
        diff, norm = np.linalg.norm(pred - ref), np.linalg.norm(ref)
        return float(diff / norm) if norm > 0 else float(diff)
    shape = ref.shape[:axis] + (-1,)
    diff, norm = np.linalg.norm((pred - ref).reshape(shape), axis=axis), np.linalg.norm(ref.reshape(shape), axis=axis)
    return np.where(norm > 0, diff / np.where(norm > 0, norm, 1), diff)
