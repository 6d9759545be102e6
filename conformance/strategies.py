"""Hypothesis strategies for valid (and deliberately degenerate) detection inputs (DESIGN §8).

One module shared by tests/ and conformance/. Values are small-magnitude floats so that float64
round-off stays far below any tolerance; sizes are kept small so that brute force is feasible.
Strategies return float64 torch tensors.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
from hypothesis import strategies as st  # also used as S.st by the conformance modules
from hypothesis.extra import numpy as hnp

from oracle.boxes import xyxy_to_cxcywh_formula
from oracle.conventions import MaxIoUConvention

_unit = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def boxes_xyxy(draw, n: int | st.SearchStrategy[int] = st.integers(0, 6), *, min_size: float = 0.0,
               max_coord: float = 1.0) -> torch.Tensor:
    """``[n, 4]`` xyxy boxes with corners in ``[0, max_coord]`` and sides >= ``min_size``.

    ``min_size=0`` allows zero-width, zero-height and zero-area boxes.
    """
    count = draw(n) if isinstance(n, st.SearchStrategy) else n
    xy = draw(hnp.arrays(np.float64, (count, 2), elements=st.floats(0.0, max_coord * 0.9, width=64)))
    wh = draw(hnp.arrays(np.float64, (count, 2),
                         elements=st.floats(min_size, max(min_size, max_coord * 0.6), width=64)))
    # Corners on a dyadic grid (multiples of max_coord / 1024, exact even in float16): centres and
    # half-sizes are then exact in every dtype, so a candidate and the reference on its rounded inputs
    # take the same side of every kink (touching boxes, clamps); see docs/conformance.md.
    q = max_coord / 1024
    xy = np.round(xy / q) * q
    wh = np.maximum(np.round(wh / q) * q, np.ceil(min_size / q) * q)
    return torch.from_numpy(np.concatenate([xy, xy + wh], axis=1))


def boxes_positive(n: int | st.SearchStrategy[int] = st.integers(1, 6)) -> st.SearchStrategy[torch.Tensor]:
    """xyxy boxes of strictly positive area (every IoU-family ratio is defined without eps)."""
    return boxes_xyxy(n, min_size=1e-3)


def boxes_realistic(n: int | st.SearchStrategy[int] = st.integers(1, 5)) -> st.SearchStrategy[torch.Tensor]:
    """xyxy boxes in the unit square with sides >= 1e-2 (about 6 px at 640 px): the domain of the
    conformance suite's generated tests. Tinier and degenerate boxes are golden edge cases."""
    return boxes_xyxy(n, min_size=1e-2)


def boxes_small(n: int | st.SearchStrategy[int] = st.integers(1, 5)) -> st.SearchStrategy[torch.Tensor]:
    """Small normalised xyxy boxes: corners in ``[0, 1/16]`` on a grid of 2**-14, sides in ``[2**-10, 0.0375]``
    (areas down to about 1e-6, a box of under 1 px at 640 px). Near such areas the denominators' eps of the IoU
    family (1e-7 additive, 1e-6 clamped) move the result by percents, so a wrong eps shows at float32
    (:func:`small_boxes_fit`)."""
    return boxes_xyxy(n, min_size=2.0 ** -10, max_coord=1 / 16)


def small_boxes_fit(dtype: torch.dtype) -> bool:
    """Whether a run in ``dtype`` takes :func:`boxes_small`: float32 and float64. A half-precision run cannot see
    the eps they exist for (1e-7 is below its resolution of an area), and float16 areas would be subnormal."""
    return dtype in (torch.float32, torch.float64)


def box_pair(n1: int | st.SearchStrategy[int], n2: int | st.SearchStrategy[int], *,
             small: bool) -> st.SearchStrategy[tuple[torch.Tensor, torch.Tensor]]:
    """Two sets of xyxy boxes ``([n1, 4], [n2, 4])`` at one scale (both realistic or, when ``small``, possibly both
    small), so that they overlap as often at either scale."""
    scales = [boxes_realistic] + ([boxes_small] if small else [])
    return st.sampled_from(scales).flatmap(lambda boxes: st.tuples(boxes(n1), boxes(n2)))


def logits(shape: tuple[int, ...], *, bound: float = 20.0) -> st.SearchStrategy[torch.Tensor]:
    """Float64 logits of the given shape in ``[-bound, bound]``, on a grid of 1/64 (exact in float16 up
    to 32), so that a threshold decision (``sigmoid > 0.5``, an argmax) cannot flip between a candidate's
    dtype and the reference on its rounded inputs: a logit is exactly 0 or at least 1/64 away from it."""
    return hnp.arrays(np.float64, shape, elements=st.floats(-bound, bound, width=64)).map(
        lambda a: torch.from_numpy(np.round(a * 64) / 64))


def dfl_targets(shape: tuple[int, ...], reg_max: int) -> st.SearchStrategy[torch.Tensor]:
    """Distribution-focal-loss targets (distances in bins) on a grid of 1/64 from 0 to ``reg_max``: integers (one
    bin exactly), splits between two bins, and values beyond the clamp at ``reg_max - 1 - 0.01`` (the upper bound
    of the regressable range, ultralytics' ``DFLoss``)."""
    return hnp.arrays(np.float64, shape, elements=st.integers(0, 64 * reg_max).map(lambda i: i / 64)).map(
        torch.from_numpy)


def probabilities(shape: tuple[int, ...]) -> st.SearchStrategy[torch.Tensor]:
    return hnp.arrays(np.float64, shape, elements=_unit).map(torch.from_numpy)


@st.composite
def normalized_cxcywh(draw, n: int) -> torch.Tensor:
    """``[n, 4]`` normalised cxcywh boxes of positive size inside the unit square."""
    xyxy = draw(boxes_xyxy(n, min_size=1e-2, max_coord=1.0))
    return xyxy_to_cxcywh_formula(xyxy)


@st.composite
def matching_problem(draw, *, max_queries: int = 6, max_targets: int = 6, num_classes: int = 4,
                     softmax: bool = True, queries: int | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One image: ``(pred_logits [Q, K], pred_boxes [Q, 4] cxcywh, target dict)``.

    ``K = num_classes + 1`` for the softmax cost (no-object column last), ``num_classes`` for focal.
    ``Q`` is ``queries`` if given, else drawn from ``[1, max_queries]``. The target count may be 0
    and may exceed the query count.
    """
    q = queries if queries is not None else draw(st.integers(1, max_queries))
    t = draw(st.integers(0, max_targets))
    k = num_classes + 1 if softmax else num_classes
    lg = draw(logits((q, k), bound=8.0))
    pred = draw(normalized_cxcywh(q))
    gt = draw(normalized_cxcywh(t))
    labels = torch.tensor(draw(st.lists(st.integers(0, num_classes - 1), min_size=t, max_size=t)), dtype=torch.int64)
    return lg, pred, {"labels": labels, "boxes": gt}


@st.composite
def matching_batch(draw, *, max_images: int = 3, max_queries: int = 5, max_targets: int = 5,
                   softmax: bool = True) -> tuple[torch.Tensor, torch.Tensor, list[dict], list[tuple]]:
    """A batch: ``(pred_logits [B, Q, K], pred_boxes [B, Q, 4], targets, per-image problems)``."""
    q = draw(st.integers(1, max_queries))
    problems = draw(st.lists(matching_problem(max_targets=max_targets, softmax=softmax, queries=q),
                             min_size=1, max_size=max_images))
    logits = torch.stack([p[0] for p in problems])
    boxes = torch.stack([p[1] for p in problems])
    return logits, boxes, [p[2] for p in problems], problems


def cost_matrices(max_rows: int = 6, max_cols: int = 6, *, unique: bool = False) -> st.SearchStrategy[torch.Tensor]:
    """Float64 cost matrices ``[Q, T]``; ``unique=True`` gives tie-free ones (conformance_anchors §6.3)."""
    shapes = st.tuples(st.integers(0, max_rows), st.integers(0, max_cols))
    return shapes.flatmap(lambda s: hnp.arrays(np.float64, s, elements=st.floats(-10, 10, width=64),
                                               unique=unique).map(torch.from_numpy))


@st.composite
def criterion_batch(draw, *, num_classes: int = 4, softmax: bool = True, layers: int = 1, max_images: int = 3,
                    max_queries: int = 5, max_targets: int = 5) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Decoder outputs and targets: ``(logits [L, B, Q, K], boxes [L, B, Q, 4] cxcywh, targets)``.

    ``K = num_classes + 1`` (softmax) or ``num_classes`` (focal); images may have no targets, and more
    targets than queries.
    """
    b = draw(st.integers(1, max_images))
    q = draw(st.integers(1, max_queries))
    k = num_classes + (1 if softmax else 0)
    lg = draw(logits((layers, b, q, k), bound=8.0))
    boxes = torch.stack([torch.stack([draw(normalized_cxcywh(q)) for _ in range(b)]) for _ in range(layers)])
    targets = []
    for _ in range(b):
        t = draw(st.integers(0, max_targets))
        labels = draw(st.lists(st.integers(0, num_classes - 1), min_size=t, max_size=t))
        targets.append({"labels": torch.tensor(labels, dtype=torch.int64), "boxes": draw(normalized_cxcywh(t))})
    return lg, boxes, targets


@st.composite
def matching_inputs(draw, *, softmax: bool = True, ties: bool = False, pixel: bool = False,
                    num_classes: int = 4) -> dict:
    """Canonical ``assign.hungarian`` inputs for a batch of 1-2 images.

    ``ties=False`` (tie-free): every logit gets a distinct offset, so no two queries cost the same.
    ``ties=True`` (tie-rich): the second query of every image copies the first, so their costs tie
    exactly for every target, and the matching is determined only up to swapping them.
    """
    logits_, boxes_, targets, _ = draw(matching_batch(max_images=2, max_queries=5, max_targets=4, softmax=softmax))
    if ties and logits_.shape[1] >= 2:
        logits_ = logits_.clone()
        boxes_ = boxes_.clone()
        logits_[:, 1] = logits_[:, 0]
        boxes_[:, 1] = boxes_[:, 0]
    elif not ties:
        logits_ = logits_ + torch.arange(logits_.numel(), dtype=torch.float64).reshape(logits_.shape) * 1e-3
    if pixel:
        targets = [{**t, "image_size": torch.tensor([480.0, 640.0], dtype=torch.float64)} for t in targets]
    return {"pred_logits": logits_, "pred_boxes": boxes_, "targets": targets}


# --------------------------------------------------------------------------- max-IoU thresholds

def threshold_fraction(t: float) -> Fraction:
    """The rational a threshold literal denotes (``0.4`` -> 2/5): an IoU "exactly at" the threshold.

    IoU is ``inter / union``, one correctly rounded division of exact areas, so an IoU equal to 2/5 rounds,
    in any binary dtype, to the number the literal 0.4 rounds to: ``iou >= thr`` then holds in the
    candidate's dtype and in the reference's float64 alike (a decision no rounding can flip).
    """
    return Fraction(repr(float(t)))


def max_iou_thresholds(convention: MaxIoUConvention) -> tuple[tuple[str, float], ...]:
    """``(name, value)`` of every threshold of a max-IoU convention: ``pos_iou_thr``, the negative range's
    upper end (and its lower end when ``neg_iou_thr`` is a ``(lo, hi)`` range) and, with low-quality
    matching, ``min_pos_iou``."""
    lo, hi = convention.negative_range
    out = [("pos_iou_thr", convention.pos_iou_thr)]
    if isinstance(convention.neg_iou_thr, tuple):
        out.append(("neg_iou_thr[lo]", lo))
    out.append(("neg_iou_thr", hi))
    if convention.match_low_quality:
        out.append(("min_pos_iou", convention.min_pos_iou))
    return tuple(out)


def _transpose(box: list[int]) -> list[int]:
    """xyxy -> the same box with x and y swapped (a construction along y becomes one along x)."""
    return [box[1], box[0], box[3], box[2]]


@st.composite
def iou_exactly(draw, t: float) -> tuple[list[int], list[int]]:
    """``(gt, prior)``: two xyxy boxes of integer corners (grid units, the GT's corner at the origin) whose
    IoU is exactly the rational ``t`` denotes (:func:`threshold_fraction`).

    With ``t = p / q`` (lowest terms), both ``w`` wide, along y:

    - ``slide``: same height ``(p + q) k``, the prior shifted by ``(q - p) k``: IoU ``2pk / 2qk``
      (``t = 0``: the boxes touch along an edge);
    - ``gt-inside`` / ``prior-inside``: heights ``p k`` and ``q k``, the smaller anywhere inside the larger.

    Areas stay small integers (below 256 for thresholds of denominator <= 10), so that they, their sums
    and the coordinates are exact in float16 and bfloat16 too.
    """
    f = threshold_fraction(t)
    p, q = f.numerator, f.denominator
    w = draw(st.integers(1, 3))
    k = draw(st.integers(1, 2))
    shapes = ("slide", "gt-inside", "prior-inside") if p > 0 else ("slide",)
    shape = draw(st.sampled_from(shapes))
    if shape == "slide":
        h, s = (p + q) * k, (q - p) * k
        gt, prior = [0, 0, w, h], [0, s, w, s + h]
    else:
        o = draw(st.integers(0, (q - p) * k))
        small, large = [0, o, w, o + p * k], [0, 0, w, q * k]
        gt, prior = (small, large) if shape == "gt-inside" else (large, small)
    if draw(st.booleans()):
        gt, prior = _transpose(gt), _transpose(prior)
    return gt, prior


@st.composite
def threshold_group(draw, convention: MaxIoUConvention, *, origin: float) -> tuple[str, list, list]:
    """``(threshold name, gt [[4]], priors [[4], ...])``: one GT and the priors of a threshold decision of
    ``convention``, xyxy pixels, at or beyond ``origin`` along one axis (the caller keeps its other boxes
    below ``origin``, so that these overlap nothing else).

    The prior at the threshold (:func:`iou_exactly`); for ``pos_iou_thr`` and the negative range a rival
    prior (a copy of the GT, IoU 1) is the GT's best prior, so that the low-quality step does not make the
    prior at the threshold positive whatever the comparison; for ``min_pos_iou`` the prior at the threshold
    is the GT's only overlapping prior (its best: the decision is the low-quality step's).
    """
    name, t = draw(st.sampled_from(max_iou_thresholds(convention)))
    gt, prior = draw(iou_exactly(t))
    priors = [prior] if name == "min_pos_iou" else [prior, list(gt)]
    priors = draw(st.permutations(priors))
    unit = draw(st.sampled_from((1, 2)))  # a power of two: exact scaling
    along = draw(st.integers(0, 16)) * 4  # the offset along the other axis
    shift = [origin, along, origin, along] if draw(st.booleans()) else [along, origin, along, origin]

    def place(box):
        return [c * unit + d for c, d in zip(box, shift)]
    return name, [place(gt)], [place(b) for b in priors]


@st.composite
def max_iou_inputs(draw, convention: MaxIoUConvention, *, max_coord: float = 64.0) -> dict:
    """``assign.max_iou`` inputs: priors ``[N, 4]`` and gt_boxes ``[K, 4]`` (xyxy pixels, sides >= 1 px),
    gt_labels ``[K]`` int64, with at least one GT and one prior.

    Random boxes (:func:`boxes_xyxy`, corners below ``1.5 * max_coord``) and, in about half the draws, a
    :func:`threshold_group`: priors at exactly one of the convention's thresholds, beyond the random boxes
    (the random part's IoU values practically never land on a threshold). With a group the random part may
    have no GT or no prior, and each random GT has a copy of itself among the priors: a GT that overlaps no
    prior (a zero-overlap GT) would, under ``min_pos_iou = 0``, claim every prior of IoU 0 with it, the
    group's too, and hide the group's decision (zero-overlap GTs are drawn without a group).
    """
    origin = float(np.ceil(1.5 * max_coord)) + 4.0
    group = draw(st.one_of(st.none(), threshold_group(convention, origin=origin)))
    least = 0 if group is not None else 1
    priors = draw(boxes_xyxy(st.integers(least, 8), min_size=1.0, max_coord=max_coord))
    gt = draw(boxes_xyxy(st.integers(least, 4), min_size=1.0, max_coord=max_coord))
    if group is not None:
        _, group_gt, group_priors = group
        priors = torch.cat([priors, gt])
        extra_gt, extra_priors = torch.tensor(group_gt, dtype=torch.float64), torch.tensor(group_priors,
                                                                                          dtype=torch.float64)
        # GT order matters to mmdet's low-quality step (a later GT overwrites an earlier one's claims).
        gt = torch.cat([extra_gt, gt]) if draw(st.booleans()) else torch.cat([gt, extra_gt])
        priors = torch.cat([extra_priors, priors]) if draw(st.booleans()) else torch.cat([priors, extra_priors])
    labels = draw(st.lists(st.integers(0, 3), min_size=len(gt), max_size=len(gt)))
    return {"priors": priors, "gt_boxes": gt, "gt_labels": torch.tensor(labels, dtype=torch.int64)}


# --------------------------------------------------------------------------- anchors

_featmap = st.tuples(st.integers(0, 4), st.integers(0, 4)).map(list)  # (H, W) of a level, empty levels included


@st.composite
def anchor_grid_config(draw) -> dict:
    """``anchors.grid`` config: an mmdet ``AnchorGenerator``'s fields as real configs set them (strides 4-32, square
    or ``[w, h]``; ratios from {0.5, 1, 2}; ``scales`` or RetinaNet's ``octave_base_scale`` with
    ``scales_per_octave``; ``scale_major``; ``center_offset`` 0 or 0.5), 1-3 levels of 0-4 cells a side, and a
    ``pad_shape`` that cuts into the last row or column of a level as often as not (``valid_flags``)."""
    levels = draw(st.integers(1, 3))
    strides = [draw(st.sampled_from([4, 8, 16, 32, [8, 4], [16, 8]])) for _ in range(levels)]
    config = {"strides": strides, "ratios": draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=1, max_size=3,
                                                          unique=True)),
              "scale_major": draw(st.booleans()), "center_offset": draw(st.sampled_from([0.0, 0.5])),
              "featmap_sizes": [draw(_featmap) for _ in range(levels)]}
    if draw(st.booleans()):
        config["scales"] = draw(st.lists(st.sampled_from([1, 2, 3, 8]), min_size=1, max_size=3, unique=True))
    else:
        config.update(octave_base_scale=4, scales_per_octave=draw(st.integers(1, 3)))
    coarsest = max(s if isinstance(s, int) else max(s) for s in strides) * 4
    config["pad_shape"] = [draw(st.integers(1, coarsest)), draw(st.integers(1, coarsest))]
    return config


@st.composite
def anchor_points_config(draw) -> dict:
    """``anchors.points`` config: YOLOv8's three levels (strides 8, 16, 32) of 0-4 cells a side, offset 0 or 0.5."""
    return {"featmap_sizes": [draw(_featmap) for _ in range(3)], "strides": [8, 16, 32],
            "offset": draw(st.sampled_from([0.0, 0.5]))}

