"""The YOLOv8 detection and instance-segmentation losses (ultralytics), in float64.

Inputs (framework-neutral versions of ultralytics' ``preds`` and ``batch``):

- ``pred_distri`` ``[B, A, 4 * reg_max]``: DFL logits, **side-major** (l, t, r, b, each ``reg_max``
  bins), i.e. ultralytics' ``preds["boxes"]`` ``[B, 4 * reg_max, A]`` transposed;
- ``pred_logits`` ``[B, A, C]``: class logits (``preds["scores"]`` transposed);
- ``featmap_sizes`` ``[(H_l, W_l)]`` and ``strides`` ``[s_l]`` per level; anchors are the cell centres
  of :func:`oracle.anchors.anchor_points`, ``A = sum(H_l * W_l)``;
- ``batch``: a mapping with ``batch_idx`` int ``[N]`` (image of each target), ``cls`` int ``[N]``
  in ``[0, C)`` and ``bboxes`` ``[N, 4]`` normalised cxcywh; for segmentation also ``masks``.

Detection loss (ultralytics ``v8DetectionLoss.get_assigned_targets_and_loss`` and ``BboxLoss``):

1. The image size is ``featmap_sizes[0] * strides[0]`` (``imgsz``), unless ``image_size`` is given.
   Targets are grouped per image (``preprocess``: the ``k``-th target of image ``b`` in input order
   becomes row ``k``; ultralytics needs ``batch_idx`` sorted, as its collate function produces,
   the reference groups stably and accepts any order), scaled to pixels and converted to xyxy.
2. ``mask_gt``: a real row, and, with ``drop_nonpositive_gts`` (ultralytics'
   ``gt_bboxes.sum(2) > 0``), only if the sum of its pixel xyxy coordinates is > 0: **a GT whose
   x1 + y1 + x2 + y2 <= 0 is silently treated as padding** (e.g. a box centred at the origin).
3. Predicted boxes are the DFL expectations decoded around the anchor points, in grid units. The
   assigner (:func:`~oracle.assign.task_aligned.task_aligned_assign`) sees detached sigmoid scores
   and boxes, anchors and GTs in pixels.
4. ``tss = max(sum(target_scores), 1)``. Classification: ``sum BCE(logits, target_scores) / tss``.
   Box: ``sum_fg (1 - CIoU(pred, target)) * w / tss`` with ``w`` the anchor's target-score sum and
   boxes in grid units (``IOU_ULTRALYTICS_XYXY``). DFL: the targets are the anchor-to-side
   distances in grid units clamped to ``[0, reg_max - 1 - 0.01]``
   (:func:`oracle.coders.bbox2dist`), ``sum_fg DFL * w / tss``
   (:func:`oracle.losses.distribution_focal_loss`). ``reg_max`` is the number of bins (16); older
   ultralytics built ``BboxLoss(reg_max - 1)`` and clamped at its argument ``- 0.01``: the same
   numbers.
5. Gains: box 7.5, cls 0.5, dfl 1.5. ``loss`` is the gained vector times ``B`` (ultralytics returns
   it unsummed; its trainer sums it), ``items`` the detached gained values per batch.

Segmentation (``v8SegmentationLoss``) adds ``seg`` between box and cls:

- ``masks``: with ``overlap_mask`` ``[B, H, W]`` index maps where value ``k + 1`` marks the ``k``-th
  target of that image (0 background); without it ``[N, H, W]`` per-target masks in [0, 1] in
  input order.
- If ``(H, W)`` differs from the prototypes' ``(Hm, Wm)``: ultralytics 8.4.190 **upsamples the
  prototypes** to ``(H, W)`` (bilinear, ``align_corners=False``; loss.py L545-547, where the
  nearest downsampling of the masks is left commented out); older releases (e.g. 8.0.x, commit
  3acead7 cited in ultralytics issue #4469, and the seed blog's listing) **downsample the masks**
  to ``(Hm, Wm)`` with ``nearest``. ``mask_resize`` selects one.
- Per image and foreground anchor: ``mask logits = coefficients @ prototypes``, BCE against the
  assigned target's mask, zeroed outside the target box scaled to mask pixels (``crop_mask``),
  averaged over all ``h * w`` pixels and divided by the box's normalised area; summed over
  anchors and images, divided by the number of foreground anchors, times the **box** gain.
  Without foreground the term is 0 (kept in the graph, as ultralytics' ``(proto * 0).sum()``).
- A foreground anchor assigned to a box of zero area makes ultralytics divide 0 by 0 (NaN); the
  reference raises :class:`~oracle.errors.OracleInputError` instead.
- Not modelled: the semantic-segmentation branch (``proto`` given as a tuple, ``sem_loss``), class
  weights (``model.class_weights``) and the ``reg_max <= 1`` L1 box path (YOLO26).

Upstream: ultralytics 8.4.190 ultralytics/utils/loss.py (``DFLoss`` L97-116, ``BboxLoss`` L119-164,
``v8DetectionLoss`` L355-512, ``v8SegmentationLoss`` L515-677), ultralytics/utils/tal.py
(``make_anchors``, ``dist2bbox``, ``bbox2dist``, ``TaskAlignedAssigner``), ultralytics/utils/ops.py
(``crop_mask``, ``xywh2xyxy``), ultralytics/cfg/default.yaml (box 7.5, cls 0.5, dfl 1.5,
overlap_mask True); the bilinear resize is oracle/masks.py's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from .._blocks import recomputed_blocks
from .. import boxes as box_ops
from .. import losses as L
from .._checks import (TensorLike, as_float64, as_index, check_finite, check_labels, check_magnitude, check_range,
                       check_rank, check_scalar, fail)
from ..anchors import anchor_points
from ..box_formats import COORDINATE_BOUND
from ..assign.task_aligned import TaskAlignedAssignment, task_aligned_assign, ultralytics_stride_val
from ..coders import bbox2dist, dfl_expectation, dist2bbox
from ..conventions.dense import YOLOV8_ULTRALYTICS, YOLOV8_ULTRALYTICS_LEGACY, YOLOv8LossConfig
from ..masks import crop_mask, downsample_masks, resize_bilinear_formula


@dataclass(frozen=True)
class YOLOv8LossResult:
    """A YOLOv8 loss.

    - ``loss``: the gained components times the batch size, with gradient, in the order of
      ``names`` (``box_loss, cls_loss, dfl_loss``, or ``box_loss, seg_loss, cls_loss, dfl_loss``);
      ultralytics' first return value. ``total`` is its sum (what the trainer backpropagates).
    - ``items``: the gained components per batch (not times ``B``), detached; ultralytics' second
      return value.
    - ``assignment``: the assignment used.
    """

    loss: torch.Tensor
    names: tuple[str, ...]
    items: dict[str, torch.Tensor] = field(repr=False)
    assignment: TaskAlignedAssignment = field(repr=False)

    @property
    def total(self) -> torch.Tensor:
        return self.loss.sum()


# --------------------------------------------------------------------------- inputs

@dataclass(frozen=True)
class _Targets:
    """Targets padded per image: ``labels`` ``[B, n]``, ``boxes`` ``[B, n, 4]`` pixel xyxy, ``mask_gt``
    ``[B, n]``, ``source`` ``[B, n]``: the row of each target in the input (-1 for padding), ``counts``
    ``[B]``: targets per image."""

    labels: torch.Tensor
    boxes: torch.Tensor
    mask_gt: torch.Tensor
    source: torch.Tensor
    counts: torch.Tensor


#: The largest stride and image side accepted (pixels): predicted and target boxes are grid coordinates (or
#: normalised ones) times these, and must stay within the box coordinate bound (1e150) of the IoU terms.
PIXEL_SCALE_BOUND = 1e100


def _levels(featmap_sizes: object, strides: object) -> tuple[list[float], torch.Tensor, torch.Tensor]:
    if not isinstance(strides, (tuple, list)) or len(strides) == 0:
        raise fail("strides", "a non-empty sequence of one stride per level", repr(strides))
    points, stride = anchor_points(featmap_sizes, strides)
    for i, s in enumerate(strides):
        check_scalar(f"strides[{i}]", s, high=PIXEL_SCALE_BOUND)
    return [float(s) for s in strides], points, stride


def _image_size(image_size: object, featmap_sizes: Sequence, strides: list[float]) -> tuple[float, float]:
    if image_size is None:  # ultralytics: feats[0].shape[2:] * stride[0]
        h, w = featmap_sizes[0]
        return float(h) * strides[0], float(w) * strides[0]
    if not isinstance(image_size, (tuple, list)) or len(image_size) != 2:
        raise fail("image_size", "(height, width) in pixels", repr(image_size))
    return tuple(check_scalar(f"image_size[{i}]", v, low=0.0, low_open=True,  # type: ignore[return-value]
                              high=PIXEL_SCALE_BOUND) for i, v in enumerate(image_size))


def _predictions(pred_distri: TensorLike, pred_logits: TensorLike, num_anchors: int, reg_max: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    logits = as_float64("pred_logits", pred_logits)
    check_rank("pred_logits", logits, 3, "([B, A, C] class logits)")
    b, a, c = logits.shape
    if b == 0 or c == 0 or a != num_anchors:
        raise fail("pred_logits", f"shape (B >= 1, {num_anchors}, C >= 1): A = sum of H * W over the levels",
                   f"shape {tuple(logits.shape)}")
    check_finite("pred_logits", logits)
    distri = as_float64("pred_distri", pred_distri)
    if tuple(distri.shape) != (b, a, 4 * reg_max):
        raise fail("pred_distri", f"shape ({b}, {a}, {4 * reg_max}): 4 sides x reg_max={reg_max} bins, side-major",
                   f"shape {tuple(distri.shape)}")
    check_finite("pred_distri", distri)
    return distri, logits


def _targets(batch: object, batch_size: int, num_classes: int, image_size: tuple[float, float],
             drop_nonpositive: bool) -> _Targets:
    if not isinstance(batch, Mapping):
        raise fail("batch", "a mapping with 'batch_idx', 'cls' and 'bboxes'", type(batch).__name__)
    for key in ("batch_idx", "cls", "bboxes"):
        if key not in batch:
            raise fail("batch", f"a '{key}' entry", f"keys {sorted(batch)}")
    image = as_index("batch['batch_idx']", batch["batch_idx"])
    check_rank("batch['batch_idx']", image, 1, "([N] image index per target)")
    n_total = image.shape[0]
    check_range("batch['batch_idx']", image, 0, batch_size - 1)
    labels = as_index("batch['cls']", batch["cls"])
    if tuple(labels.shape) != (n_total,):
        raise fail("batch['cls']", f"shape ({n_total},), one class per target", f"shape {tuple(labels.shape)}")
    check_labels("batch['cls']", labels, num_classes)
    boxes = box_ops.validate_boxes("batch['bboxes']", batch["bboxes"], "cxcywh", rank=2)
    if boxes.shape[0] != n_total:
        raise fail("batch['bboxes']", f"shape ({n_total}, 4) normalised cxcywh", f"shape {tuple(boxes.shape)}")
    counts = torch.bincount(image, minlength=batch_size)
    n = int(counts.max()) if n_total else 0
    order = torch.sort(image, stable=True).indices
    image_sorted = image[order]
    within = torch.arange(n_total) - (counts.cumsum(0) - counts)[image_sorted]
    source = torch.full((batch_size, n), -1, dtype=torch.int64)
    source[image_sorted, within] = order
    real = source >= 0
    h, w = image_size
    check_magnitude("batch['bboxes']", boxes * max(h, w), COORDINATE_BOUND,
                    f"pixel boxes (times the image size {(h, w)})", "coordinates")
    # ultralytics preprocess: scale the cxcywh boxes to pixels, then xywh2xyxy.
    xyxy = box_ops.cxcywh_to_xyxy_formula(boxes * torch.tensor([w, h, w, h], dtype=torch.float64))
    padded_boxes = torch.where(real[..., None], xyxy[source.clamp(min=0)], 0.0)
    padded_labels = torch.where(real, labels[source.clamp(min=0)], 0)
    mask_gt = real & (padded_boxes.sum(-1) > 0) if drop_nonpositive else real
    return _Targets(padded_labels, padded_boxes, mask_gt, source, counts)


def _assignment_arg(assignment: object, b: int, a: int, c: int, n: int) -> TaskAlignedAssignment:
    """A given assignment's fields that the loss reads: shapes, dtypes and ranges (``n`` GT rows per image)."""
    if not isinstance(assignment, TaskAlignedAssignment):
        raise fail("assignment", "a TaskAlignedAssignment", type(assignment).__name__)
    expected = {"target_bboxes": (b, a, 4), "target_scores": (b, a, c), "fg_mask": (b, a), "target_gt_idx": (b, a)}
    for name, shape in expected.items():
        t = getattr(assignment, name)
        if tuple(t.shape) != shape:
            raise fail(f"assignment.{name}", f"shape {shape}", f"shape {tuple(t.shape)}")
    if assignment.fg_mask.dtype != torch.bool:
        raise fail("assignment.fg_mask", "a bool tensor", f"dtype {assignment.fg_mask.dtype}")
    boxes = box_ops.validate_boxes("assignment.target_bboxes", assignment.target_bboxes, "xyxy")
    scores = as_float64("assignment.target_scores", assignment.target_scores)
    check_finite("assignment.target_scores", scores)
    check_range("assignment.target_scores", scores, 0.0, 1.0)
    gt_idx = as_index("assignment.target_gt_idx", assignment.target_gt_idx)
    check_range("assignment.target_gt_idx", gt_idx, 0, max(n - 1, 0))
    # A candidate's assignment may come in its own dtype and device: the loss reads float64 CPU copies.
    return dataclasses.replace(assignment, target_bboxes=boxes.detach(), target_scores=scores.detach(),
                               fg_mask=assignment.fg_mask.cpu(), target_gt_idx=gt_idx)


# --------------------------------------------------------------------------- detection

@dataclass(frozen=True)
class _Detection:
    loss: torch.Tensor  # (3,) gained box, cls, dfl
    assignment: TaskAlignedAssignment
    targets: _Targets
    image_size: tuple[float, float]


def _detection(pred_distri: TensorLike, pred_logits: TensorLike, featmap_sizes: object, strides: object, batch: object,
               config: YOLOv8LossConfig, image_size: object, assignment: object) -> _Detection:
    if not isinstance(config, YOLOv8LossConfig):
        raise fail("config", "a YOLOv8LossConfig", type(config).__name__)
    strides, points, stride = _levels(featmap_sizes, strides)
    size = _image_size(image_size, featmap_sizes, strides)
    r = config.reg_max
    distri, logits = _predictions(pred_distri, pred_logits, points.shape[0], r)
    b, a, c = logits.shape
    targets = _targets(batch, b, c, size, config.drop_nonpositive_gts)
    bins = distri.view(b, a, 4, r)
    pred_boxes = dist2bbox(dfl_expectation(bins), points)  # grid units
    if assignment is None:
        stride_val = ultralytics_stride_val(strides) if config.assigner.enlarge_small_gts else None
        assignment = task_aligned_assign(torch.sigmoid(logits.detach()), pred_boxes.detach() * stride,
                                         points * stride, targets.labels, targets.boxes, targets.mask_gt,
                                         convention=config.assigner, stride_val=stride_val)
    else:
        assignment = _assignment_arg(assignment, b, a, c, targets.labels.shape[1])
    scores = assignment.target_scores
    score_sum = scores.sum().clamp(min=1.0)
    # Element-wise per image (oracle/_blocks.py), one sum over the concatenation: the same elements and
    # reduction as the whole [B, A, C] at once (bit for bit), without its float64 temporaries (43 MB each at
    # 8 x 8400 x 80).
    cls = recomputed_blocks(_elementwise_bce, zip(logits, scores)).view(logits.shape).sum() / score_sum if b else \
        L.sigmoid_binary_cross_entropy(logits, scores, reduction="sum") / score_sum
    fg = assignment.fg_mask
    weight = scores[fg].sum(-1)
    target_grid = assignment.target_bboxes[fg] / stride.expand(b, a, 1)[fg]
    box = L.ciou_loss(pred_boxes[fg], target_grid, convention=config.box_iou, weight=weight,
                      reduction="sum") / score_sum
    distances = bbox2dist(points.expand(b, a, 2)[fg], target_grid, reg_max=r)
    dfl = L.distribution_focal_loss(bins[fg], distances, weight=weight, reduction="sum") / score_sum
    loss = torch.stack((box * config.box_gain, cls * config.cls_gain, dfl * config.dfl_gain))
    return _Detection(loss, assignment, targets, size)


def _elementwise_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The element-wise sigmoid BCE of logits ``[A, C]`` against target scores ``[A, C]``."""
    return L.sigmoid_binary_cross_entropy(logits, targets, reduction="none")


def yolov8_detection_loss(pred_distri: TensorLike, pred_logits: TensorLike, featmap_sizes: Sequence[Sequence[int]],
                          strides: Sequence[float], batch: Mapping, *, config: YOLOv8LossConfig = YOLOV8_ULTRALYTICS,
                          image_size: Sequence[float] | None = None,
                          assignment: TaskAlignedAssignment | None = None) -> YOLOv8LossResult:
    """ultralytics ``v8DetectionLoss(preds, batch)`` (module docstring for inputs and formulas).

    pred_distri ``[B, A, 4 * reg_max]``, pred_logits ``[B, A, C]``, featmap_sizes ``[(H, W)]``,
    strides ``[s]``, batch with ``batch_idx`` ``[N]``, ``cls`` ``[N]``, ``bboxes`` ``[N, 4]``
    normalised cxcywh. ``image_size`` ``(H, W)`` pixels overrides ultralytics' ``featmap_sizes[0] *
    strides[0]``; ``assignment`` replaces the assigner's (e.g. a candidate's, to evaluate the
    reference loss under it). Strides and ``image_size`` are at most :data:`PIXEL_SCALE_BOUND` (1e100), and the
    target boxes in pixels at most 1e150 in magnitude.
    """
    det = _detection(pred_distri, pred_logits, featmap_sizes, strides, batch, config, image_size, assignment)
    return _result(det.loss, ("box_loss", "cls_loss", "dfl_loss"), det.assignment,
                   batch_size=det.assignment.fg_mask.shape[0])


def _result(loss: torch.Tensor, names: tuple[str, ...], assignment: TaskAlignedAssignment,
            batch_size: int) -> YOLOv8LossResult:
    items = {name: value for name, value in zip(names, loss.detach())}
    return YOLOv8LossResult(loss=loss * batch_size, names=names, items=items, assignment=assignment)


# --------------------------------------------------------------------------- segmentation

def _mask_inputs(mask_coefficients: TensorLike, proto: TensorLike, masks: TensorLike, b: int, a: int, targets: _Targets,
                 overlap: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    coef = as_float64("mask_coefficients", mask_coefficients)
    check_rank("mask_coefficients", coef, 3, "([B, A, nm])")
    if coef.shape[:2] != (b, a) or coef.shape[2] == 0:
        raise fail("mask_coefficients", f"shape ({b}, {a}, nm >= 1)", f"shape {tuple(coef.shape)}")
    check_finite("mask_coefficients", coef)
    protos = as_float64("proto", proto)
    check_rank("proto", protos, 4, "([B, nm, Hm, Wm] prototypes)")
    if protos.shape[:2] != (b, coef.shape[2]) or protos.shape[2] == 0 or protos.shape[3] == 0:
        raise fail("proto", f"shape ({b}, {coef.shape[2]}, Hm >= 1, Wm >= 1)", f"shape {tuple(protos.shape)}")
    check_finite("proto", protos)
    m = as_float64("batch['masks']", masks).detach()
    check_rank("batch['masks']", m, 3, "([B, H, W] index maps)" if overlap else "([N, H, W] per-target masks)")
    check_finite("batch['masks']", m)
    if overlap:
        if m.shape[0] != b:
            raise fail("batch['masks']", f"{b} index maps (overlap_mask: one per image)", f"shape {tuple(m.shape)}")
        not_integer = m != m.round()
        too_big = m > targets.counts[:, None, None]
        bad = not_integer | too_big | (m < 0)
        if bool(bad.any()):
            idx = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise fail("batch['masks']", "integers in [0, number of targets of the image] (k + 1 = its k-th target)",
                       f"{m[idx].item()} at index {idx}")
    else:
        if m.shape[0] != int(targets.counts.sum()):
            raise fail("batch['masks']", f"{int(targets.counts.sum())} masks (one per target, overlap_mask off)",
                       f"shape {tuple(m.shape)}")
        check_range("batch['masks']", m, 0.0, 1.0)
    return coef, protos, m


def yolov8_segmentation_loss(pred_distri: TensorLike, pred_logits: TensorLike, mask_coefficients: TensorLike,
                             proto: TensorLike, featmap_sizes: Sequence[Sequence[int]], strides: Sequence[float],
                             batch: Mapping, *,
                             config: YOLOv8LossConfig = YOLOV8_ULTRALYTICS, image_size: Sequence[float] | None = None,
                             assignment: TaskAlignedAssignment | None = None) -> YOLOv8LossResult:
    """ultralytics ``v8SegmentationLoss(preds, batch)`` without the semantic branch (module docstring).

    As :func:`yolov8_detection_loss`, plus mask_coefficients ``[B, A, nm]`` (``preds["mask_coefficient"]``
    transposed), proto ``[B, nm, Hm, Wm]`` and ``batch["masks"]``: ``[B, H, W]`` index maps with
    ``config.overlap_mask``, else ``[N, H, W]`` per-target masks in input order. Returns
    ``box_loss, seg_loss, cls_loss, dfl_loss``.
    """
    det = _detection(pred_distri, pred_logits, featmap_sizes, strides, batch, config, image_size, assignment)
    if "masks" not in batch:
        raise fail("batch", "a 'masks' entry for the segmentation loss", f"keys {sorted(batch)}")
    b, a = det.assignment.fg_mask.shape
    coef, protos, masks = _mask_inputs(mask_coefficients, proto, batch["masks"], b, a, det.targets,
                                       config.overlap_mask)
    fg = det.assignment.fg_mask
    if bool(fg.any()):
        seg = _mask_loss(coef, protos, masks, det, config) / fg.sum()
    else:  # ultralytics keeps the prototypes and coefficients in the graph with a zero
        seg = (protos * 0).sum() + (coef * 0).sum()
    d = det.loss
    loss = torch.stack((d[0], seg * config.box_gain, d[1], d[2]))
    return _result(loss, ("box_loss", "seg_loss", "cls_loss", "dfl_loss"), det.assignment, batch_size=b)


def _mask_loss(coef: torch.Tensor, protos: torch.Tensor, masks: torch.Tensor, det: _Detection,
               config: YOLOv8LossConfig) -> torch.Tensor:
    """The sum over images and foreground anchors of the cropped, area-normalised mask BCE."""
    if tuple(masks.shape[-2:]) != tuple(protos.shape[-2:]):
        if config.mask_resize == "upsample_proto":
            protos = resize_bilinear_formula(protos, tuple(masks.shape[-2:]))
        else:
            masks = downsample_masks(masks, tuple(protos.shape[-2:]))
    mask_h, mask_w = protos.shape[-2:]
    if not config.overlap_mask and bool(((masks == 0) | (masks == 1)).all()):
        masks = masks == 1  # binary per-target masks: the BCE's single log-sigmoid form
    h, w = det.image_size
    assign = det.assignment
    normalised = assign.target_bboxes / torch.tensor([w, h, w, h], dtype=torch.float64)
    area = (normalised[..., 2] - normalised[..., 0]) * (normalised[..., 3] - normalised[..., 1])
    in_mask_pixels = normalised * torch.tensor([mask_w, mask_h, mask_w, mask_h], dtype=torch.float64)
    total = protos.new_zeros(())
    for i in range(coef.shape[0]):
        fg = assign.fg_mask[i]
        if not bool(fg.any()):
            continue
        rows = assign.target_gt_idx[i][fg]
        fg_area = area[i][fg]
        if bool((fg_area == 0).any()):
            anchor = int(torch.nonzero(fg)[int(torch.nonzero(fg_area == 0)[0])])
            raise fail("batch['bboxes']", "a box of positive area for every assigned target (ultralytics divides the "
                       "mask loss by the box area: 0/0 = NaN)",
                       f"image {i}, anchor {anchor} assigned to row {int(rows[fg_area == 0][0])} of zero area")
        logits = (coef[i][fg] @ protos[i].flatten(1)).view(-1, mask_h, mask_w)
        boxes = in_mask_pixels[i][fg]
        # Per block of anchors (oracle/_blocks.py): the [n_fg, h, w] temporaries of the BCE and the crop (86 MB
        # each in float64 at 420 x 160 x 160) become blocks the allocator reuses, target masks included. Every
        # element and every per-anchor mean is the same computation as on the whole tensor (the log-sigmoids,
        # products and means round alike in any block), so the bits are unchanged.
        blocks = ((block, masks[i], block_rows + 1, block_boxes) if config.overlap_mask else
                  (block, masks, det.targets.source[i, block_rows], block_boxes)
                  for block, block_rows, block_boxes in zip(logits.split(_MASK_BLOCK), rows.split(_MASK_BLOCK),
                                                            boxes.split(_MASK_BLOCK)))
        total = total + (recomputed_blocks(_cropped_bce_means, blocks) / fg_area).sum()
    return total


def _cropped_bce_means(logits: torch.Tensor, masks: torch.Tensor, index: torch.Tensor,
                       boxes: torch.Tensor) -> torch.Tensor:
    """Per predicted mask ``[n, h, w]`` (logits): the mean over pixels of its BCE against its target mask, zero
    outside its box ``[n, 4]`` (xyxy in mask pixels): ``[n]``. The targets are ``masks[index]`` for per-target
    masks ``[N, h, w]`` (bool, or float in [0, 1]), or the pixels of the index map ``masks [h, w]`` equal to
    ``index [n]``. Bool targets take the BCE's single log-sigmoid form (same bits, half the work:
    :func:`oracle.losses.sigmoid_binary_cross_entropy`).
    """
    if masks.dim() == 2:
        gt_masks = masks == index.to(torch.float64)[:, None, None]
    else:
        gt_masks = masks[index]
    bce = L.sigmoid_binary_cross_entropy(logits, gt_masks, reduction="none")
    return crop_mask(bce, boxes).mean(dim=(1, 2))


#: Foreground anchors per block of the mask loss (a float64 block of 160 x 160 masks is 6.6 MB).
_MASK_BLOCK = 32


__all__ = ["YOLOV8_ULTRALYTICS", "YOLOV8_ULTRALYTICS_LEGACY", "YOLOv8LossConfig", "YOLOv8LossResult",
           "yolov8_detection_loss", "yolov8_segmentation_loss"]
