"""Loss primitives in float64: element-wise terms and one reduction with per-element weights.

Every loss here computes an element-wise term and hands it to :func:`reduce_loss`, which applies
an optional per-element ``weight`` and then reduces:

- ``reduction="none"``: the weighted element-wise loss;
- ``reduction="sum"``: its sum;
- ``reduction="mean"``: without ``avg_factor``, the sum over the number of elements (ignored or
  zero-weight elements included, as mmdet's ``reduce_loss``); with ``avg_factor``, the sum over
  ``avg_factor + avg_factor_eps``. That single form covers the DETR family's ``/ num_boxes``
  (``avg_factor_eps=0``), mmdet's ``weight_reduce_loss`` (``avg_factor_eps=FLT_EPS``) and
  PyTorch's class-weighted mean ``F.cross_entropy(weight=w)`` (``avg_factor = w[labels].sum()``).

Upstream: mmdet/models/losses/{utils,cross_entropy_loss,focal_loss,smooth_l1_loss,iou_loss}.py,
torchvision/ops/{focal_loss,giou_loss,ciou_loss,diou_loss}.py, facebookresearch/detr
models/segmentation.py (``sigmoid_focal_loss``, ``dice_loss``), torch.nn.functional
(``cross_entropy``, ``binary_cross_entropy_with_logits``, ``smooth_l1_loss``).
Logs of probabilities are always computed as log-sigmoid / log-softmax of the logits.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from . import boxes as box_ops
from ._checks import (TensorLike, as_float64, as_index, check_broadcasts, check_choice, check_finite, check_labels,
                      check_range, check_rank, check_same_shape, check_scalar, fail)
from .conventions import IOU_EXACT, IoUConvention

Reduction = Literal["none", "sum", "mean"]


# --------------------------------------------------------------------------- reduction

def _weight_arg(weight: TensorLike, loss_shape: torch.Size) -> torch.Tensor | None:
    if weight is None:
        return None
    w = as_float64("weight", weight)
    check_finite("weight", w)
    check_range("weight", w, 0.0, None)
    check_broadcasts("weight", w, loss_shape, f"a shape that broadcasts to the element-wise loss {tuple(loss_shape)}")
    return w


def reduce_loss(loss: torch.Tensor, *, weight: TensorLike = None, reduction: Reduction = "mean",
                avg_factor: object = None, avg_factor_eps: float = 0.0) -> torch.Tensor:
    """Weight and reduce an element-wise loss (mmdet ``weight_reduce_loss`` semantics).

    loss ``[...]`` (finite; a float64 tensor is used as is, keeping its autograd graph); weight broadcastable to
    it, finite and >= 0. With ``avg_factor`` only
    ``"mean"`` (``sum / (avg_factor + avg_factor_eps)``) and ``"none"`` (the unreduced weighted
    loss) are allowed; ``"sum"`` with an ``avg_factor`` raises, as in mmdet. A mean over zero
    elements is undefined and raises; use ``"sum"`` (0) or pass an ``avg_factor``.
    """
    loss = as_float64("loss", loss)
    check_finite("loss", loss)
    reduction = check_choice("reduction", reduction, ("none", "sum", "mean"))
    eps = check_scalar("avg_factor_eps", avg_factor_eps, low=0.0)
    w = _weight_arg(weight, loss.shape)
    if w is not None:
        loss = loss * w
    if avg_factor is None:
        if reduction == "none":
            return loss
        if reduction == "sum":
            return loss.sum()
        if loss.numel() == 0:
            raise fail("loss", "at least one element for reduction='mean'",
                       "an empty loss (pass avg_factor, or use reduction='sum')")
        return loss.sum() / loss.numel()
    factor = check_scalar("avg_factor", avg_factor, low=0.0)
    if reduction == "sum":
        raise fail("reduction", "'mean' or 'none' when avg_factor is given (as mmdet)", "'sum'")
    if reduction == "none":
        return loss
    if factor + eps <= 0:
        raise fail("avg_factor", "avg_factor + avg_factor_eps > 0", f"{factor} + {eps}")
    return loss.sum() / (factor + eps)


# --------------------------------------------------------------------------- classification

def background_class_weight(num_classes: int, background_weight: float) -> torch.Tensor:
    """Class weights ``[num_classes + 1]``: 1 for each class, ``background_weight`` for the last.

    DETR's ``empty_weight`` (``eos_coef``, models/detr.py) and mmdet DETRHead's ``class_weight``
    (``bg_cls_weight``, dense_heads/detr_head.py).
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise fail("num_classes", "a positive int", repr(num_classes))
    bg = check_scalar("background_weight", background_weight, low=0.0)
    w = torch.ones(num_classes + 1, dtype=torch.float64)
    w[-1] = bg
    return w


def one_hot_targets(labels: TensorLike, num_classes: int) -> torch.Tensor:
    """One-hot targets ``[..., num_classes]`` from labels ``[...]`` in ``[0, num_classes]``.

    The label ``num_classes`` is background and gives an all-zero row, as DETR-family focal losses
    (``one_hot(C + 1)[..., :-1]``) and mmdet's ``_expand_onehot_labels`` build it.
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise fail("num_classes", "a positive int", repr(num_classes))
    y = as_index("labels", labels)
    check_labels("labels", y, num_classes + 1)
    return F.one_hot(y, num_classes + 1)[..., :num_classes].to(torch.float64)


def softmax_cross_entropy(logits: TensorLike, labels: TensorLike, *, class_weight: TensorLike = None,
                          ignore_index: int | None = None, weight: TensorLike = None, reduction: Reduction = "mean",
                          avg_factor: object = None, avg_factor_eps: float = 0.0) -> torch.Tensor:
    """Softmax cross-entropy ``-class_weight[y] * log_softmax(logits)[y]``.

    logits ``[..., C]``, labels ``[...]`` (integer, in ``[0, C)`` or ``ignore_index``, which
    contributes 0), class_weight ``[C]`` (e.g. :func:`background_class_weight`). The element-wise
    loss has the shape of ``labels``. PyTorch's weighted mean, as DETR's ``loss_ce`` uses it, is
    ``reduction="mean", avg_factor=class_weight[labels].sum()``.
    """
    x = as_float64("logits", logits)
    if x.dim() < 1 or x.shape[-1] < 1:
        raise fail("logits", "shape [..., C] with C >= 1", f"shape {tuple(x.shape)}")
    check_finite("logits", x)
    y = as_index("labels", labels)
    if y.shape != x.shape[:-1]:
        raise fail("labels", f"shape {tuple(x.shape[:-1])} (logits without the class dimension)",
                   f"shape {tuple(y.shape)}")
    num_classes = x.shape[-1]
    if ignore_index is not None and not isinstance(ignore_index, int):
        raise fail("ignore_index", "an int or None", repr(ignore_index))
    check_labels("labels", y, num_classes, ignore_index)
    keep = torch.ones_like(y, dtype=torch.bool) if ignore_index is None else y != ignore_index
    safe = torch.where(keep, y, torch.zeros_like(y))
    nll = -torch.log_softmax(x, dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    if class_weight is not None:
        cw = as_float64("class_weight", class_weight)
        check_rank("class_weight", cw, 1, f"([C] with C = {num_classes})")
        if cw.shape[0] != num_classes:
            raise fail("class_weight", f"{num_classes} entries (one per logit)", f"{cw.shape[0]}")
        check_finite("class_weight", cw)
        check_range("class_weight", cw, 0.0, None)
        nll = nll * cw[safe]
    loss = torch.where(keep, nll, torch.zeros_like(nll))
    return reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor, avg_factor_eps=avg_factor_eps)


def _logits_and_targets(logits: TensorLike, targets: TensorLike) -> tuple[torch.Tensor, torch.Tensor]:
    x = as_float64("logits", logits)
    check_finite("logits", x)
    t = as_float64("targets", targets)
    check_same_shape("targets", t, "logits", x)
    check_finite("targets", t)
    check_range("targets", t, 0.0, 1.0)
    return x, t


def sigmoid_binary_cross_entropy(logits: TensorLike, targets: TensorLike, *, pos_weight: TensorLike = None,
                                 weight: TensorLike = None, reduction: Reduction = "mean", avg_factor: object = None,
                                 avg_factor_eps: float = 0.0) -> torch.Tensor:
    """``-(pos_weight * t * log sigmoid(x) + (1 - t) * log sigmoid(-x))`` element-wise.

    logits and targets ``[...]`` (targets in [0, 1], soft targets allowed; or bool); ``pos_weight``
    broadcastable to them (``F.binary_cross_entropy_with_logits``; mmdet's sigmoid
    ``CrossEntropyLoss`` passes its ``class_weight`` here).

    Bool targets without ``pos_weight`` take one log-sigmoid of ``where(t, x, -x)`` per element: for t in
    {0, 1} the formula is ``-log sigmoid(x)`` or ``-log sigmoid(-x)`` exactly (the other product is a
    signed zero, and adding it is exact), and so is each gradient, so the result has the bits of the same
    targets given as 0.0 and 1.0, for half the work (ultralytics' mask loss, whose targets are binary
    masks).
    """
    if isinstance(targets, torch.Tensor) and targets.dtype == torch.bool:
        if pos_weight is None:
            x = as_float64("logits", logits)
            check_finite("logits", x)
            check_same_shape("targets", targets, "logits", x)
            loss = -F.logsigmoid(torch.where(targets.cpu(), x, -x))
            return reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor,
                               avg_factor_eps=avg_factor_eps)
        targets = targets.to(torch.float64)
    x, t = _logits_and_targets(logits, targets)
    pw = None
    if pos_weight is not None:
        pw = as_float64("pos_weight", pos_weight)
        check_finite("pos_weight", pw)
        check_range("pos_weight", pw, 0.0, None)
        check_broadcasts("pos_weight", pw, x.shape, f"a shape that broadcasts to {tuple(x.shape)}")
    return reduce_loss(_bce(x, t, pw), weight=weight, reduction=reduction, avg_factor=avg_factor,
                       avg_factor_eps=avg_factor_eps)


def _bce(x: torch.Tensor, t: torch.Tensor, pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Element-wise ``-(pos_weight t log sigmoid(x) + (1 - t) log sigmoid(-x))`` of checked float64 tensors: the
    one BCE of the sigmoid losses (``F.binary_cross_entropy_with_logits``'s formula, in log-sigmoid form)."""
    pos = t * F.logsigmoid(x)
    if pos_weight is not None:
        pos = pos_weight * pos
    return -(pos + (1 - t) * F.logsigmoid(-x))


def sigmoid_focal_loss(logits: TensorLike, targets: TensorLike, *, alpha: float | None = 0.25, gamma: float = 2.0,
                       weight: TensorLike = None, reduction: Reduction = "mean", avg_factor: object = None,
                       avg_factor_eps: float = 0.0) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al. 2017): ``alpha_t * (1 - p_t)^gamma * BCE(x, t)``.

    logits and targets ``[...]`` (targets in [0, 1]; soft targets allowed).
    ``alpha_t = alpha t + (1 - alpha)(1 - t)``; ``alpha=None`` disables it (torchvision's
    ``alpha=-1``). ``1 - p_t = t sigmoid(-x) + (1 - t) sigmoid(x)`` is computed without
    cancellation. DETR-family normalisations: the mask loss ``loss.mean(1).sum() / num_boxes``
    over ``[N, P]`` pixels is ``reduction="mean", avg_factor=num_boxes * P``; the class loss
    ``loss.mean(1).sum() / num_boxes * Q`` is ``avg_factor=num_boxes``. Upstream: torchvision
    ops/focal_loss.py, mmdet ``py_sigmoid_focal_loss``, detr models/segmentation.py.
    """
    x, t = _logits_and_targets(logits, targets)
    if alpha is not None:
        alpha = check_scalar("alpha", alpha, low=0.0, high=1.0)
    gamma = check_scalar("gamma", gamma, low=0.0)
    bce = _bce(x, t)
    one_minus_pt = t * torch.sigmoid(-x) + (1 - t) * torch.sigmoid(x)
    loss = bce * one_minus_pt ** gamma
    if alpha is not None:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor, avg_factor_eps=avg_factor_eps)


# --------------------------------------------------------------------------- regression

def _pred_and_target(pred: TensorLike, target: TensorLike) -> tuple[torch.Tensor, torch.Tensor]:
    p = as_float64("pred", pred)
    check_finite("pred", p)
    t = as_float64("target", target)
    check_same_shape("target", t, "pred", p)
    check_finite("target", t)
    return p, t


def l1_loss(pred: TensorLike, target: TensorLike, *, weight: TensorLike = None, reduction: Reduction = "mean",
            avg_factor: object = None, avg_factor_eps: float = 0.0) -> torch.Tensor:
    """``|pred - target|`` element-wise; pred and target ``[...]`` of one shape (mmdet ``l1_loss``)."""
    p, t = _pred_and_target(pred, target)
    return reduce_loss((p - t).abs(), weight=weight, reduction=reduction, avg_factor=avg_factor,
                       avg_factor_eps=avg_factor_eps)


def smooth_l1_loss(pred: TensorLike, target: TensorLike, *, beta: float = 1.0, weight: TensorLike = None,
                   reduction: Reduction = "mean", avg_factor: object = None,
                   avg_factor_eps: float = 0.0) -> torch.Tensor:
    """Huber-style smooth L1: ``0.5 d^2 / beta`` where ``d < beta``, else ``d - 0.5 beta``.

    ``d = |pred - target|`` (mmdet ``smooth_l1_loss``, ``F.smooth_l1_loss``). ``beta = 0`` is
    plain L1, as in PyTorch (mmdet asserts ``beta > 0``).
    """
    beta = check_scalar("beta", beta, low=0.0)
    p, t = _pred_and_target(pred, target)
    d = (p - t).abs()
    loss = d if beta == 0 else torch.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)
    return reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor, avg_factor_eps=avg_factor_eps)


def _box_loss(overlap, pred: TensorLike, target: TensorLike, fmt: str, convention: IoUConvention, weight: TensorLike,
              reduction: Reduction, avg_factor: object, avg_factor_eps: float) -> torch.Tensor:
    p = as_float64("pred", pred)
    t = as_float64("target", target)
    loss = 1 - overlap(p, t, aligned=True, fmt=fmt, convention=convention, names=("pred", "target"))
    if weight is not None:
        weight = as_float64("weight", weight)
        if weight.dim() > 1 and weight.shape == p.shape:
            # A per-coordinate weight [N, 4], as mmdet's box heads pass their bbox_weights: the mean over the four
            # (mmdet/models/losses/iou_loss.py, GIoULoss.forward and CIoULoss.forward: weight.mean(-1)).
            weight = _weight_arg(weight, p.shape).mean(-1)
    return reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor, avg_factor_eps=avg_factor_eps)


def giou_loss(pred: TensorLike, target: TensorLike, *, fmt: box_ops.BoxFormat = "xyxy",
              convention: IoUConvention = IOU_EXACT, weight: TensorLike = None, reduction: Reduction = "mean",
              avg_factor: object = None, avg_factor_eps: float = 0.0) -> torch.Tensor:
    """``1 - GIoU(pred_i, target_i)``; pred and target ``[N, 4]`` in ``fmt``, weight ``[N]`` (or ``[N, 4]``, per
    coordinate: mmdet's, averaged over the four).

    DETR's ``loss_giou`` (normalised xyxy, ``/ num_boxes``), mmdet ``GIoULoss`` (pixel xyxy,
    ``IOU_MMDET``), torchvision ``generalized_box_iou_loss`` (``IOU_TORCHVISION_LOSS``).
    """
    return _box_loss(box_ops._giou, pred, target, fmt, convention, weight, reduction, avg_factor, avg_factor_eps)


def diou_loss(pred: TensorLike, target: TensorLike, *, fmt: box_ops.BoxFormat = "xyxy",
              convention: IoUConvention = IOU_EXACT, weight: TensorLike = None, reduction: Reduction = "mean",
              avg_factor: object = None, avg_factor_eps: float = 0.0) -> torch.Tensor:
    """``1 - DIoU(pred_i, target_i)``; pred and target ``[N, 4]``, weight ``[N]`` or ``[N, 4]`` as
    :func:`giou_loss` (torchvision ``distance_box_iou_loss``)."""
    return _box_loss(box_ops._diou, pred, target, fmt, convention, weight, reduction, avg_factor, avg_factor_eps)


def ciou_loss(pred: TensorLike, target: TensorLike, *, fmt: box_ops.BoxFormat = "xyxy",
              convention: IoUConvention = IOU_EXACT, weight: TensorLike = None, reduction: Reduction = "mean",
              avg_factor: object = None, avg_factor_eps: float = 0.0) -> torch.Tensor:
    """``1 - CIoU(pred_i, target_i)``; pred and target ``[N, 4]`` in ``fmt``, weight ``[N]`` (or ``[N, 4]``, per
    coordinate: mmdet's, averaged over the four).

    torchvision ``complete_box_iou_loss`` (``IOU_TORCHVISION_LOSS``), ultralytics ``BboxLoss``
    (``IOU_ULTRALYTICS_XYXY``), mmdet ``CIoULoss`` (``IOU_MMDET_CIOU_LOSS``).
    """
    return _box_loss(box_ops._ciou, pred, target, fmt, convention, weight, reduction, avg_factor, avg_factor_eps)


# --------------------------------------------------------------------------- masks

def dice_loss(logits: TensorLike, targets: TensorLike, *, smooth: float = 1.0, weight: TensorLike = None,
              reduction: Reduction = "mean", avg_factor: object = None, avg_factor_eps: float = 0.0) -> torch.Tensor:
    """Per-mask dice loss ``1 - (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth)``, ``p = sigmoid(x)``.

    logits and targets ``[N, ...]`` (each mask flattened; targets in [0, 1]) -> element-wise loss
    ``[N]``, weight ``[N]``. DETR models/segmentation.py ``dice_loss`` (smooth 1, ``.sum() /
    num_boxes``, i.e. ``reduction="mean", avg_factor=num_boxes``) and transformers' copy.
    """
    x, t = _logits_and_targets(logits, targets)
    if x.dim() < 1:
        raise fail("logits", "shape [N, ...] (one row per mask)", f"shape {tuple(x.shape)}")
    smooth = check_scalar("smooth", smooth, low=0.0)
    p = torch.sigmoid(x).flatten(1) if x.dim() > 1 else torch.sigmoid(x)[:, None]
    tf = t.flatten(1) if t.dim() > 1 else t[:, None]
    num = 2 * (p * tf).sum(-1) + smooth
    den = p.sum(-1) + tf.sum(-1) + smooth
    if smooth == 0 and bool((den.detach() == 0).any()):
        raise fail("logits/targets", "a non-zero denominator when smooth=0", "a mask with sum(p) + sum(t) = 0")
    return reduce_loss(1 - num / den, weight=weight, reduction=reduction, avg_factor=avg_factor,
                       avg_factor_eps=avg_factor_eps)


# --------------------------------------------------------------------------- distribution focal loss

def distribution_focal_loss(logits: TensorLike, targets: TensorLike, *, weight: TensorLike = None,
                            reduction: Reduction = "mean", avg_factor: object = None,
                            avg_factor_eps: float = 0.0) -> torch.Tensor:
    """Distribution focal loss (Li et al. 2020, arXiv:2006.04388) of the four sides, as ultralytics' ``DFLoss``.

    logits ``[..., 4, R]`` (``R = reg_max`` bins ``0 .. R-1`` per side l, t, r, b, the layout of
    :func:`oracle.coders.dfl_expectation`), targets ``[..., 4]`` distances in bins. Each target is
    clamped to ``[0, R - 1 - 0.01]``, split between its floor bin ``i`` and ``i + 1`` with linear
    weights ``w_i = i + 1 - y`` and ``w_{i+1} = y - i``, and the side's loss is
    ``-(w_i log softmax_i + w_{i+1} log softmax_{i+1})``; the element-wise loss ``[...]`` is the mean
    over the four sides. Upstream: ultralytics/utils/loss.py ``DFLoss.__call__`` (clamps its target
    in place to ``reg_max - 1 - 0.01``, ``.mean(-1, keepdim=True)``); mmdet's
    ``distribution_focal_loss`` (models/losses/gfocal_loss.py) is the per-side term without the clamp.
    """
    x = as_float64("logits", logits)
    if x.dim() < 2 or x.shape[-2] != 4 or x.shape[-1] < 2:
        raise fail("logits", "shape [..., 4, R] with R >= 2 bins (l, t, r, b)", f"shape {tuple(x.shape)}")
    check_finite("logits", x)
    t = as_float64("targets", targets)
    if t.shape != x.shape[:-1]:
        raise fail("targets", f"shape {tuple(x.shape[:-1])} (one distance per side)", f"shape {tuple(t.shape)}")
    check_finite("targets", t)
    bins = x.shape[-1]
    t = t.clamp(min=0.0, max=bins - 1 - 0.01)
    left = t.detach().floor().to(torch.int64)
    w_left = (left + 1) - t
    log_p = torch.log_softmax(x, dim=-1)
    side = -(log_p.gather(-1, left[..., None]).squeeze(-1) * w_left
             + log_p.gather(-1, (left + 1)[..., None]).squeeze(-1) * (1 - w_left))
    return reduce_loss(side.mean(-1), weight=weight, reduction=reduction, avg_factor=avg_factor,
                       avg_factor_eps=avg_factor_eps)


# --------------------------------------------------------------------------- varifocal loss

def varifocal_loss(logits: TensorLike, targets: TensorLike, labels: TensorLike, *, alpha: float = 0.75,
                   gamma: float = 2.0,
                   weight: TensorLike = None, reduction: Reduction = "mean", avg_factor: object = None,
                   avg_factor_eps: float = 0.0) -> torch.Tensor:
    """Varifocal loss (Zhang et al. 2021, arXiv:2008.13367) as ultralytics' ``VarifocalLoss`` weights it.

    ``BCE(x, q) * (alpha * sigmoid(x)^gamma * (1 - l) + q * l)`` element-wise: logits ``x``, soft
    targets ``q`` in [0, 1] (an IoU at a positive's class, 0 elsewhere) and the positive mask ``l`` in
    {0, 1}, all ``[...]`` of one shape. Positives are the ``l = 1`` elements, not those with ``q > 0``:
    a positive of target 0 has weight 0 (mmdet's ``varifocal_loss`` weights it as a negative). The
    weight is differentiated through ``sigmoid(x)``: ultralytics does not detach it (transformers'
    ``RTDetrLoss`` does). Defaults are the class's (0.75, 2.0); RT-DETR's ``DETRLoss`` passes 0.25 and
    1.5. ``loss.mean(1).sum()`` over ``[B, Q, C]`` divided by ``num_gts / Q`` (ultralytics
    models/utils/loss.py:110-113) is ``reduction="mean", avg_factor=num_gts``. Upstream computes the
    BCE in float32 (``.float()`` with autocast off); here it is float64.
    Upstream: ultralytics/utils/loss.py ``VarifocalLoss.forward`` (L50-59).
    """
    x, q = _logits_and_targets(logits, targets)
    lab = as_float64("labels", labels)
    check_same_shape("labels", lab, "logits", x)
    if not bool(((lab == 0) | (lab == 1)).all()):
        idx = tuple(int(i) for i in torch.nonzero((lab != 0) & (lab != 1))[0])
        raise fail("labels", "a 0/1 positive mask", f"{lab[idx].item()} at index {idx}")
    alpha = check_scalar("alpha", alpha, low=0.0, high=1.0)
    gamma = check_scalar("gamma", gamma, low=0.0)
    bce = _bce(x, q)
    vf_weight = alpha * torch.sigmoid(x) ** gamma * (1 - lab) + q * lab
    return reduce_loss(bce * vf_weight, weight=weight, reduction=reduction, avg_factor=avg_factor,
                       avg_factor_eps=avg_factor_eps)
