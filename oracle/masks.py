"""Padding masks, their nearest-neighbour and bilinear resizing, and the YOLOv8 mask helpers.

Padding masks are ``[B, H, W]`` bool with **True = padding** (DETR ``NestedTensor.mask``, mmdet
``DETR.pre_transformer``); transformers' ``pixel_mask`` is the complement (1 = valid).

Resizing follows PyTorch's ``F.interpolate(mode="nearest")`` exactly, as DETR
(models/backbone.py: ``F.interpolate(m[None].float(), size=x.shape[-2:]).to(torch.bool)[0]``),
mmdet (models/detectors/detr.py ``pre_transformer``) and transformers (``nn.functional.interpolate
(pixel_mask[None].float(), size=...).to(torch.bool)[0]``) call it: ATen's ``nearest_idx``
(aten/src/ATen/native/UpSample.h) copies when ``out == in``, takes ``i >> 1`` when
``out == 2 * in``, and otherwise ``min(floorf(i * scale), in - 1)`` with ``scale = (float)in / out``
computed **in float32**. The reference reproduces that rule (not float64 ``floor(i * in / out)``,
which picks a different row at some sizes).

Bilinear resizing (``F.interpolate(mode="bilinear", align_corners=False)``: DETR's mask loss resizes
predicted masks to the targets, ultralytics 8.4 its prototypes to the masks) is written out as ATen
defines it (UpSample.h ``area_pixel_compute_source_index``): output ``i`` reads the source position
``(i + 0.5) * in / out - 0.5`` clamped at 0 and blends its floor index with the next one (the last index
with itself), separably along rows and columns. It is a formula of the reference, not a call to the
kernel it checks, so it agrees with ``F.interpolate`` to rounding (tests/oracle/test_encoder.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ._checks import TensorLike, as_float64, as_index, check_finite, check_int, check_range, check_rank, fail


def _size_arg(name: str, size: object) -> tuple[int, int]:
    if not isinstance(size, (tuple, list)) or len(size) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size):
        raise fail(name, "(height, width) as two ints", repr(size))
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise fail(name, "a positive (height, width)", repr(size))
    return h, w


def padding_mask(image_sizes: Sequence[Sequence[int]], padded_shape: Sequence[int]) -> torch.Tensor:
    """``[B, H, W]`` bool, True outside each image's ``[:h, :w]`` (the valid region at the top left).

    image_sizes: ``B`` pairs ``(h, w)`` with ``1 <= h <= H`` and ``1 <= w <= W``; padded_shape ``(H, W)``.
    """
    big_h, big_w = _size_arg("padded_shape", tuple(padded_shape))
    sizes = as_index("image_sizes", image_sizes)
    if sizes.dim() != 2 or sizes.shape[1] != 2 or sizes.shape[0] == 0:
        raise fail("image_sizes", "[B, 2] (height, width) per image, B >= 1", f"shape {tuple(sizes.shape)}")
    check_range("image_sizes[:, 0]", sizes[:, 0], 1, big_h)
    check_range("image_sizes[:, 1]", sizes[:, 1], 1, big_w)
    rows = torch.arange(big_h)[None, :, None] >= sizes[:, 0, None, None]
    cols = torch.arange(big_w)[None, None, :] >= sizes[:, 1, None, None]
    return rows | cols


def nearest_source_index(in_size: int, out_size: int) -> torch.Tensor:
    """For each output index ``0..out_size-1``, the input index PyTorch's ``nearest`` mode reads (int64)."""
    if not all(isinstance(v, (int, np.integer)) and v >= 1 for v in (in_size, out_size)):
        raise fail("in_size/out_size", "positive ints", f"{in_size!r}, {out_size!r}")
    return nearest_source_index_formula(int(in_size), int(out_size))


def nearest_source_index_formula(in_size: int, out_size: int, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """:func:`nearest_source_index` as torch operations on sizes that may be symbolic (read from a tensor's
    shape while ``torch.onnx.export`` traces): the three rules become ``torch.where`` over 0-d tensors, and
    the scale is computed in float32 as ATen does. The one implementation of the rule: :func:`nearest_source_index`
    checks its arguments and calls it (tests/oracle/test_encoder.py compares it with ``F.interpolate``)."""
    i = torch.arange(out_size, device=device)
    n_in = torch.full((), in_size, dtype=torch.int64, device=device)
    n_out = torch.full((), out_size, dtype=torch.int64, device=device)
    scale = n_in.to(torch.float32) / n_out.to(torch.float32)
    src = torch.minimum(torch.floor(i.to(torch.float32) * scale).to(torch.int64), n_in - 1)
    return torch.where(n_out == n_in, i, torch.where(n_out == 2 * n_in, i // 2, src))


def resize_nearest(masks: TensorLike, size: Sequence[int]) -> torch.Tensor:
    """Resize ``[..., H, W]`` masks (bool or numeric) to ``size = (h, w)`` with PyTorch's ``nearest`` rule.

    The dtype is kept (a bool padding mask stays bool, as upstream's ``.float()`` then ``.to(bool)``).
    """
    h, w = _size_arg("size", tuple(size))
    if not isinstance(masks, torch.Tensor):
        raise fail("masks", "a tensor [..., H, W]", type(masks).__name__)
    if masks.dim() < 2 or masks.shape[-1] == 0 or masks.shape[-2] == 0:
        raise fail("masks", "a tensor [..., H, W] with H, W >= 1", f"shape {tuple(masks.shape)}")
    if masks.is_floating_point():
        check_finite("masks", masks)
    rows = nearest_source_index(masks.shape[-2], h)
    cols = nearest_source_index(masks.shape[-1], w)
    return masks.cpu()[..., rows, :][..., :, cols]


def downsample_masks(masks: TensorLike, size: Sequence[int]) -> torch.Tensor:
    """Ground-truth masks ``[N, H, W]`` (0/1) to the prototype size ``(h, w)`` by ``nearest``, float64.

    As ultralytics 8.0/8.1 ``v8SegmentationLoss`` did (``F.interpolate(masks[None], (mask_h, mask_w),
    mode="nearest")[0]``); 8.4 instead upsamples the prototypes to the mask size (bilinear).
    """
    m = as_float64("masks", masks)
    check_rank("masks", m, 3, "([N, H, W] binary masks)")
    check_finite("masks", m)
    return resize_nearest(m, size)


def bilinear_weights(in_size: int, out_size: int) -> torch.Tensor:
    """``[out_size, in_size]`` float64 weights of the bilinear resize along one axis, ``align_corners=False``
    (module docstring): each row holds ``1 - frac`` at the source's floor index and ``frac`` at the next.
    ``in_size`` and ``out_size`` are positive ints."""
    return _bilinear_weights(check_int("in_size", in_size, low=1), check_int("out_size", out_size, low=1))


def _bilinear_weights(in_size: int, out_size: int) -> torch.Tensor:
    src = ((torch.arange(out_size, dtype=torch.float64) + 0.5) * (in_size / out_size) - 0.5).clamp(min=0.0)
    low = src.floor().to(torch.int64)
    frac = src - low
    high = torch.where(low < in_size - 1, low + 1, low)
    weights = torch.zeros(out_size, in_size, dtype=torch.float64)
    rows = torch.arange(out_size)
    weights.index_put_((rows, low), 1 - frac, accumulate=True)
    weights.index_put_((rows, high), frac, accumulate=True)
    return weights


def resize_bilinear_formula(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``x`` ``[..., h, w]`` float64 resized to ``size = (H, W)``: ``rows @ x @ cols.T`` with the
    :func:`bilinear_weights` of each axis; unchecked (for callers that validated ``x``)."""
    rows = _bilinear_weights(x.shape[-2], size[0])
    cols = _bilinear_weights(x.shape[-1], size[1])
    return rows @ x @ cols.T


def resize_bilinear(x: TensorLike, size: Sequence[int]) -> torch.Tensor:
    """``x`` ``[..., h, w]`` (finite, ``h, w >= 1``) resized bilinearly to ``size = (H, W)``, float64, as
    ``F.interpolate(x, size, mode="bilinear", align_corners=False)`` to rounding (module docstring)."""
    h, w = _size_arg("size", tuple(size) if isinstance(size, (tuple, list)) else size)
    t = as_float64("x", x)
    if t.dim() < 2 or t.shape[-1] == 0 or t.shape[-2] == 0:
        raise fail("x", "a tensor [..., h, w] with h, w >= 1", f"shape {tuple(t.shape)}")
    check_finite("x", t)
    return resize_bilinear_formula(t, (h, w))


def crop_mask(masks: TensorLike, boxes: TensorLike) -> torch.Tensor:
    """Zero each mask ``[N, h, w]`` outside its box ``[N, 4]`` (xyxy in mask pixels).

    Pixel ``(row, col)`` is kept iff ``x1 <= col < x2`` and ``y1 <= row < y2`` (ultralytics
    utils/ops.py ``crop_mask``: ``masks * ((r >= x1) * (r < x2) * (c >= y1) * (c < y2))``).
    """
    m = as_float64("masks", masks)
    check_rank("masks", m, 3, "([N, h, w])")
    check_finite("masks", m)
    b = as_float64("boxes", boxes)
    if b.shape != (m.shape[0], 4):
        raise fail("boxes", f"shape ({m.shape[0]}, 4), one xyxy box per mask", f"shape {tuple(b.shape)}")
    check_finite("boxes", b)
    x1, y1, x2, y2 = (b[:, i, None, None] for i in range(4))
    cols = torch.arange(m.shape[2], dtype=torch.float64)[None, None, :]
    rows = torch.arange(m.shape[1], dtype=torch.float64)[None, :, None]
    # The column test [N, 1, w] and the row test [N, h, 1] each on their own, then one [N, h, w] product.
    keep = ((cols >= x1) & (cols < x2)) & ((rows >= y1) & (rows < y2))
    return m * keep
