"""Blockwise evaluation recomputed in the backward pass: how the reference keeps large float64 work small.

A computation that is element-wise (or row-wise) over a large tensor is run per block, each block under
``torch.utils.checkpoint``, and the blocks concatenated. Two things make this bit-identical to the whole
computation: each block does the same operations on the same elements (the caller chooses blocks for
which that holds, e.g. multiples of torch's float64 vector lanes), and the checkpointed backward recomputes
the same operations on the same operands. What it saves is memory: the block's temporaries are freed
before the next block, and nothing of it is kept for the backward pass but its inputs. Blocks come from
``split``, never indexing: an indexed block's backward writes its gradient into a zero tensor of the
whole input's size, one per block, while split's backward concatenates the gradients once. What each
caller saves, and what it costs in time, is measured in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.utils.checkpoint import checkpoint


def recomputed_blocks(fn: Callable[..., torch.Tensor], blocks: Iterable[tuple], dim: int = 0) -> torch.Tensor:
    """``torch.cat([fn(*args) for args in blocks], dim)``, each call checkpointed (recomputed in backward)."""
    return torch.cat([checkpoint(fn, *args, use_reentrant=False) for args in blocks], dim=dim)
