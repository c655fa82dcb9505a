"""Batch-invariant execution: an image made in a batch equals the same image made alone.

Matrix and convolution libraries (MKL, oneDNN, cuBLAS, cuDNN, flash attention) choose their
kernels, tiling and reduction order from the shape of the whole call, batch dimension included.
So the same seed gives floats that differ by ~1e-6 between a batch of 1 and a batch of 4, which
is now and then a pixel one level apart. Inside :func:`batch_invariant`, every call of the ops
below whose kernels look at the batch size is run once per sample, on a contiguous batch-of-one
slice, and the results are concatenated: each sample then goes through exactly the kernels it
would alone, whatever its batch. Everything else (element-wise ops, the scheduler step, the
guidance mix) is computed per element and does not depend on the batch.

The split runs even for a batch of one, so both sides see the same memory layout (a GroupNorm
on a channels-last batch-of-one view picks another kernel than on a contiguous copy).

The cost: the split ops give up batching across images. On a CPU that is nothing (one thread
is compute-bound either way; ``bench/generation.py`` prints the figure); on a GPU the matrix
work of a batch is what makes batching fast, so there it is a setting
(``STUDIO_BATCH_INVARIANT``). Images made without it reproduce exactly only at their recorded
batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

# The ops whose kernels depend on the batch size, and which of their arguments carry the
# batch (positions; the rest are weights, shapes and flags that every sample shares).
_BATCHED_ARGS: dict[Callable, tuple[int, ...]] = {
    F.linear: (0,),
    F.conv1d: (0,),
    F.conv2d: (0,),
    F.conv3d: (0,),
    F.conv_transpose2d: (0,),
    F.group_norm: (0,),
    F.layer_norm: (0,),
    F.scaled_dot_product_attention: (0, 1, 2),
    torch.bmm: (0, 1),
    torch.baddbmm: (0, 1, 2),
}


class BatchInvariantMode(TorchFunctionMode):
    """Runs the batch-size-sensitive ops one sample at a time (see the module docstring)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        positions = _BATCHED_ARGS.get(func)
        if positions is None:
            return func(*args, **kwargs)
        if func is torch.baddbmm and len(args) > 1 and not _same_batch(args[0], args[1]):
            positions = (1, 2)  # a bias that broadcasts over the batch: every sample shares it
        size = _batch(args[positions[0]]) if len(args) > positions[-1] else None
        if not size:
            return func(*args, **kwargs)  # no batched tensor where expected: leave it be
        # An attention mask (batch, heads, query, key) carries the batch; smaller ones broadcast.
        split_mask = False
        if func is F.scaled_dot_product_attention:
            if len(args) > 3:
                positions = (
                    (*positions, 3) if _batch(args[3]) == size and args[3].dim() == 4 else positions
                )
            else:
                mask = kwargs.get("attn_mask")
                split_mask = _batch(mask) == size and mask.dim() == 4
        outputs = []
        for i in range(size):
            sample_args = [
                _sample(arg, i) if position in positions else arg
                for position, arg in enumerate(args)
            ]
            sample_kwargs = kwargs
            if split_mask:
                sample_kwargs = {**kwargs, "attn_mask": _sample(kwargs["attn_mask"], i)}
            outputs.append(func(*sample_args, **sample_kwargs))
        return torch.cat(outputs)


def _batch(tensor: Any) -> int | None:
    if isinstance(tensor, torch.Tensor) and tensor.dim() >= 2:
        return tensor.shape[0]
    return None


def _same_batch(bias: Any, batch: Any) -> bool:
    return (
        isinstance(bias, torch.Tensor)
        and bias.dim() == 3
        and _batch(batch) is not None
        and bias.shape[0] == batch.shape[0]
    )


def _sample(tensor: Any, index: int) -> Any:
    if not isinstance(tensor, torch.Tensor):
        return tensor
    return tensor[index : index + 1].contiguous()


@contextmanager
def batch_invariant(enabled: bool = True) -> Iterator[None]:
    """Within the block, batched results equal per-sample results bit for bit."""
    if not enabled:
        yield
        return
    with BatchInvariantMode():
        yield
