"""Hypothesis strategies for valid (and deliberately degenerate) detection inputs (DESIGN §8).

One module shared by tests/ and conformance/. Values are small-magnitude floats so that float64
round-off stays far below any tolerance; sizes are kept small so that brute force is feasible.
Strategies return float64 torch tensors.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
from hypothesis import strategies as st  # also used as S.st by the conformance modules
from hypothesis.extra import numpy as hnp

from oracle.boxes import xyxy_to_cxcywh_formula
from oracle.conventions import MaxIoUConvention

_unit = st.floats(0.0, 1.0, allow_nan=False, allow_infinity=False, width=64)


def seeded_rng(draw) -> np.random.Generator:
    """A numpy generator from a drawn seed, for the bulk of a draw's values: one hypothesis choice for a whole array,
    where ``hnp.arrays`` and ``st.lists`` make one per element (the generated tests spent most of their time so).
    Shapes, counts and variants stay hypothesis' own choices, which it drives to their bounds."""
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))


def grid_integers(rng: np.random.Generator, lo: int, hi: int, shape: tuple[int, ...]) -> np.ndarray:
    """An int64 array of ``shape`` with entries in ``[lo, hi]``: 1/8 of them ``lo``, 1/16 ``hi``, the rest uniform.
    Like hypothesis' own numbers it reaches the bounds, where the kinks are (zero sizes, boxes at the image's edge,
    the largest logits); the uniform rest spreads between them."""
    values = rng.integers(lo, hi + 1, shape)
    edge = rng.random(shape)
    return np.where(edge < 1 / 8, lo, np.where(edge < 3 / 16, hi, values))


def grid_logits(rng: np.random.Generator, shape: tuple[int, ...], bound: float) -> torch.Tensor:
    """Float64 logits as :func:`logits` gives them (``[-bound, bound]`` on the grid of 1/64, zero and both bounds
    among them: :func:`grid_integers`, with a random sign for the bound), from ``rng``."""
    steps = int(bound * 64)
    magnitude = grid_integers(rng, 0, steps, shape)
    sign = np.where(rng.random(shape) < 0.5, -1, 1)
    return torch.from_numpy(sign * magnitude / 64.0)


@st.composite
def boxes_xyxy(draw, n: int | st.SearchStrategy[int] = st.integers(0, 6), *, min_size: float = 0.0,
               max_coord: float = 1.0) -> torch.Tensor:
    """``[n, 4]`` xyxy boxes (:func:`grid_boxes`) from a drawn count and seed."""
    count = draw(n) if isinstance(n, st.SearchStrategy) else n
    return grid_boxes(seeded_rng(draw), count, min_size=min_size, max_coord=max_coord)


def grid_boxes(rng: np.random.Generator, count: int, *, min_size: float = 0.0, max_coord: float = 1.0) -> torch.Tensor:
    """``[count, 4]`` float64 xyxy boxes with sides >= ``min_size``: top-left corners in ``[0, 0.9 * max_coord]``,
    sides up to ``0.6 * max_coord``, each at its bounds often (:func:`grid_integers`).

    ``min_size=0`` allows zero-width, zero-height and zero-area boxes.
    """
    # Corners on a dyadic grid (multiples of max_coord / 1024, exact even in float16): centres and
    # half-sizes are then exact in every dtype, so a candidate and the reference on its rounded inputs
    # take the same side of every kink (touching boxes, clamps); see docs/conformance.md.
    q = max_coord / 1024
    smallest = math.ceil(min_size / q - 1e-9)
    xy = grid_integers(rng, 0, 922, (count, 2))
    wh = grid_integers(rng, smallest, max(smallest, 614), (count, 2))
    return torch.from_numpy(np.concatenate([xy, xy + wh], axis=1) * q)


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


def boxes_pixel(n: int | st.SearchStrategy[int] = st.integers(1, 5)) -> st.SearchStrategy[torch.Tensor]:
    """Pixel-scale xyxy boxes: integer corners in ``[0, 1024]`` (exact in every dtype), sides in ``[8, 614]``, areas
    up to about 3.8e5, past float16's largest finite number (65504): an area or union computed in float16
    overflows (torchvision 0.8.2's ``box_iou`` returned NaN or 0 for a true 0.2985 so)."""
    return boxes_xyxy(n, min_size=8.0, max_coord=1024.0)


def small_boxes_fit(dtype: torch.dtype) -> bool:
    """Whether a run in ``dtype`` takes :func:`boxes_small`: float32 and float64. A half-precision run cannot see
    the eps they exist for (1e-7 is below its resolution of an area), and float16 areas would be subnormal."""
    return dtype in (torch.float32, torch.float64)


#: The box scales of :func:`box_pair`: each strategy with the ``max_coord`` of its grid.
_PAIR_SCALES = ((boxes_realistic, 1.0), (boxes_pixel, 1024.0))


@st.composite
def box_pair(draw, n1: int | st.SearchStrategy[int], n2: int | st.SearchStrategy[int], *,
             small: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sets of xyxy boxes ``([n1, 4], [n2, 4])`` at one scale (both realistic, both in pixels or, when ``small``,
    both small), so that they overlap as often at each scale; about a quarter of the pairs ``(i, i)`` exactly touch
    (:func:`touching`)."""
    scales = _PAIR_SCALES + (((boxes_small, 1 / 16),) if small else ())
    boxes, max_coord = draw(st.sampled_from(scales))
    first, second = draw(boxes(n1)), draw(boxes(n2))
    return first, touching(seeded_rng(draw), first, second, max_coord=max_coord)


def touching(rng: np.random.Generator, first: torch.Tensor, second: torch.Tensor, *, max_coord: float,
             rate: float = 0.25) -> torch.Tensor:
    """``second`` ``[n2, 4]`` xyxy with each of its first ``min(n1, n2)`` boxes, at ``rate``, moved to touch its
    partner in ``first`` ``[n1, 4]``: along a random axis it starts where the partner ends (or ends where it
    starts), sizes kept; along the other it starts inside the partner's extent, so the intersection is exactly 0
    wide (or high) and positive the other way. That is the kink where the ``clamp`` and ``strict`` intersections
    (``IoUConvention.intersection``) give other gradients. Sums of grid coordinates of :func:`grid_boxes`, kept
    below ``1.5 * max_coord`` (its largest corner): exact in float16 and wider. A box with no room either side stays."""
    out = second.clone()
    limit = 1.5 * max_coord
    for i in range(min(len(first), len(second))):
        if rng.random() >= rate:
            continue
        axis = int(rng.integers(0, 2))
        a, b = first[i].tolist(), out[i].tolist()
        size, other = b[axis + 2] - b[axis], b[3 - axis] - b[1 - axis]
        if a[axis + 2] + size <= limit:
            b[axis], b[axis + 2] = a[axis + 2], a[axis + 2] + size
        elif a[axis] - size >= 0:
            b[axis], b[axis + 2] = a[axis] - size, a[axis]
        else:
            continue
        # Along the other axis: starting a grid step inside the partner's start, or else ending a step inside its
        # end (both inside it when it is more than a step long, as the boxes of box_pair's scales are).
        step = max_coord / 1024
        start = a[1 - axis] + step if a[1 - axis] + step + other <= limit else a[3 - axis] - step - other
        if start < 0:
            continue
        b[1 - axis], b[3 - axis] = start, start + other
        out[i] = torch.tensor(b, dtype=out.dtype)
    return out


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
    """``[n, 4]`` normalised cxcywh boxes of positive size (sides >= 1e-2)."""
    return grid_cxcywh(seeded_rng(draw), n)


def grid_cxcywh(rng: np.random.Generator, n: int) -> torch.Tensor:
    """:func:`normalized_cxcywh` from ``rng``."""
    return xyxy_to_cxcywh_formula(grid_boxes(rng, n, min_size=1e-2, max_coord=1.0))


def grid_problem(rng: np.random.Generator, q: int, t: int, *, num_classes: int = 4,
                 softmax: bool = True) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One image's matching problem from ``rng``: ``(pred_logits [q, K], pred_boxes [q, 4] cxcywh, target dict)``
    with ``t`` targets (:func:`grid_cxcywh`, labels below ``num_classes``). ``K = num_classes + 1`` for the softmax
    cost (no-object column last), ``num_classes`` for focal; logits in ``[-8, 8]`` (:func:`grid_logits`)."""
    k = num_classes + 1 if softmax else num_classes
    target = {"labels": torch.from_numpy(rng.integers(0, num_classes, t)), "boxes": grid_cxcywh(rng, t)}
    return grid_logits(rng, (q, k), 8.0), grid_cxcywh(rng, q), target


@st.composite
def matching_problem(draw, *, max_queries: int = 6, max_targets: int = 6, num_classes: int = 4,
                     softmax: bool = True) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One image (:func:`grid_problem`): Q in ``[1, max_queries]``, a target count in ``[0, max_targets]`` (it may
    exceed Q)."""
    q, t = draw(st.integers(1, max_queries)), draw(st.integers(0, max_targets))
    return grid_problem(seeded_rng(draw), q, t, num_classes=num_classes, softmax=softmax)


@st.composite
def matching_batch(draw, *, max_images: int = 3, max_queries: int = 5, max_targets: int = 5, num_classes: int = 4,
                   softmax: bool = True) -> tuple[torch.Tensor, torch.Tensor, list[dict], list[tuple]]:
    """A batch: ``(pred_logits [B, Q, K], pred_boxes [B, Q, 4], targets, per-image problems)`` of B in ``[1,
    max_images]`` images (:func:`grid_problem`), Q in ``[1, max_queries]``, each image's target count in ``[0,
    max_targets]``."""
    q = draw(st.integers(1, max_queries))
    counts = draw(st.lists(st.integers(0, max_targets), min_size=1, max_size=max_images))
    rng = seeded_rng(draw)
    problems = [grid_problem(rng, q, t, num_classes=num_classes, softmax=softmax) for t in counts]
    return (torch.stack([p[0] for p in problems]), torch.stack([p[1] for p in problems]), [p[2] for p in problems],
            problems)


def cost_matrices(max_rows: int = 6, max_cols: int = 6, *, unique: bool = False) -> st.SearchStrategy[torch.Tensor]:
    """Float64 cost matrices ``[Q, T]``; ``unique=True`` gives tie-free ones (conformance_anchors §6.3)."""
    shapes = st.tuples(st.integers(0, max_rows), st.integers(0, max_cols))
    return shapes.flatmap(lambda s: hnp.arrays(np.float64, s, elements=st.floats(-10, 10, width=64),
                                               unique=unique).map(torch.from_numpy))


@st.composite
def criterion_batch(draw, *, num_classes: int = 4, softmax: bool = True, layers: int = 1, max_images: int = 3,
                    max_queries: int = 5, max_targets: int = 5) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Decoder outputs and targets: ``(logits [L, B, Q, K], boxes [L, B, Q, 4] cxcywh, targets)``.

    ``K = num_classes + 1`` (softmax) or ``num_classes`` (focal); logits in ``[-8, 8]`` (:func:`grid_logits`), boxes
    :func:`grid_cxcywh`; images may have no targets, and more targets than queries.
    """
    b = draw(st.integers(1, max_images))
    q = draw(st.integers(1, max_queries))
    counts = draw(st.lists(st.integers(0, max_targets), min_size=b, max_size=b))
    rng = seeded_rng(draw)
    k = num_classes + (1 if softmax else 0)
    lg = grid_logits(rng, (layers, b, q, k), 8.0)
    boxes = torch.stack([torch.stack([grid_cxcywh(rng, q) for _ in range(b)]) for _ in range(layers)])
    targets = [{"labels": torch.from_numpy(rng.integers(0, num_classes, t)), "boxes": grid_cxcywh(rng, t)}
               for t in counts]
    return lg, boxes, targets


#: The mask terms' weights: DETR's ``--mask_loss_coef`` and ``--dice_loss_coef`` 1 (detr main.py), DetrConfig's
#: ``mask_loss_coefficient`` and ``dice_loss_coefficient`` 1, Mask2Former's ``loss_mask`` and ``loss_dice`` 5 (mmdet
#: configs/mask2former), on a grid of 1/4 from 0.5 to 8.
MASK_FIELD_VALUES = {"weight_mask": st.integers(2, 32).map(lambda k: k / 4),
                     "weight_dice": st.integers(2, 32).map(lambda k: k / 4)}


@st.composite
def with_masks(draw, logits_: torch.Tensor, targets: list[dict]) -> tuple[torch.Tensor, list[dict]]:
    """DETR's segmentation inputs for a :func:`criterion_batch`: ``pred_masks [B, Q, h, w]`` mask logits at the last
    layer (``logits_ [L, B, Q, K]``; h, w in 1-6, |logit| <= 8) and each target's binary ``masks [n, H_i, W_i]``
    (H_i, W_i in 1-8 per image, so that the criterion pads them to the batch's largest and resizes the predictions
    up or down to it)."""
    b, q = logits_.shape[1:3]
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    sizes = [(len(t["labels"]), draw(st.integers(1, 8)), draw(st.integers(1, 8))) for t in targets]
    rng = seeded_rng(draw)
    pred = grid_logits(rng, (b, q, h, w), 8.0)
    # Each target's mask all 0, all 1 or random bits, a third of the targets each: empty and full masks are the
    # dice and BCE terms' bounds.
    out = [{**t, "masks": torch.from_numpy(np.where(rng.random(size[:1] + (1, 1)) < 1 / 3, 0.0, np.where(
        rng.random(size[:1] + (1, 1)) < 1 / 2, 1.0, (rng.random(size) < 0.5).astype(np.float64))))}
        for t, size in zip(targets, sizes)]
    return pred, out


#: DINO's label-noise ratios: its configs' 0.5, a quarter and all; ``ratio / 2`` is a multiple of 1/8.
CDN_LABEL_NOISE_RATIOS = (0.5, 0.25, 1.0)
#: Box-noise scales: DINO's configs' 1.0, a half, and none (dyadic: the noised corners stay on a binary grid).
CDN_BOX_NOISE_SCALES = (1.0, 0.5, 0.0)
#: The grid of the uniform draws (``label_p``, ``box_part``): multiples of 1/256 in [0, 1), exact with the 8
#: significant bits of bfloat16, so that ``label_p`` and ``ratio / 2`` compare alike in every dtype.
CDN_DRAW_STEPS = 256


@st.composite
def cdn_label_p(draw, k: int, ratio: float) -> torch.Tensor:
    """``[k]`` float64 label-noise draws on the 1/:data:`CDN_DRAW_STEPS` grid, each at ``ratio / 2`` exactly, one
    step below or above it, or anywhere in [0, 1): the comparison ``label_p < ratio / 2`` (DINO's
    models/dino/dn_components.py ``prepare_for_cdn``, mmdet's ``CdnQueryGenerator``) decides on equality too."""
    at = Fraction(ratio) / 2 * CDN_DRAW_STEPS
    assert at.denominator == 1, f"ratio / 2 = {ratio / 2} is not on the 1/{CDN_DRAW_STEPS} grid"
    near = [i for i in (int(at) - 1, int(at), int(at) + 1) if 0 <= i < CDN_DRAW_STEPS]
    element = st.one_of(st.sampled_from(near), st.integers(0, CDN_DRAW_STEPS - 1))
    steps = draw(st.lists(element, min_size=k, max_size=k))
    return torch.tensor(steps, dtype=torch.float64) / CDN_DRAW_STEPS


@st.composite
def cdn_inputs(draw, *, num_classes: int = 5, max_images: int = 2, max_targets: int = 4) -> tuple[dict, dict]:
    """``(inputs, config)`` of ``criteria.cdn``: targets (labels ``[n_i]``, normalised cxcywh boxes ``[n_i, 4]``;
    images may have none) and the draws of ``K = 2 G N`` known queries (oracle/criteria/denoising.py ``CdnDraws``:
    label_p :func:`cdn_label_p`, one relabel per ``label_p < ratio / 2``, box_sign in {0, 1}, box_part on the
    1/:data:`CDN_DRAW_STEPS` grid). config: dn_number (1, 2, 3 or 100 groups asked), label_noise_ratio
    (:data:`CDN_LABEL_NOISE_RATIOS`), box_noise_scale (:data:`CDN_BOX_NOISE_SCALES`), num_classes, num_queries."""
    from oracle.criteria import cdn_group_count
    b = draw(st.integers(1, max_images))
    counts = draw(st.lists(st.integers(0, max_targets), min_size=b, max_size=b))
    targets = [{"labels": torch.tensor(draw(st.lists(st.integers(0, num_classes - 1), min_size=n, max_size=n)),
                                       dtype=torch.int64), "boxes": draw(normalized_cxcywh(n))} for n in counts]
    config = {"dn_number": draw(st.sampled_from((3, 1, 2, 100))),
              "label_noise_ratio": draw(st.sampled_from(CDN_LABEL_NOISE_RATIOS)),
              "box_noise_scale": draw(st.sampled_from(CDN_BOX_NOISE_SCALES)),
              "num_classes": num_classes, "num_queries": draw(st.integers(1, 6))}
    k = 2 * cdn_group_count(max(counts), config["dn_number"]) * sum(counts)
    label_p = draw(cdn_label_p(k, config["label_noise_ratio"]))
    chosen = int((label_p < config["label_noise_ratio"] / 2).sum())
    parts = draw(hnp.arrays(np.int64, (k, 4), elements=st.integers(0, CDN_DRAW_STEPS - 1)))
    draws = {"label_p": label_p,
             "relabel": torch.tensor(draw(st.lists(st.integers(0, num_classes - 1), min_size=chosen,
                                                   max_size=chosen)), dtype=torch.int64),
             "box_sign": torch.from_numpy(draw(hnp.arrays(np.int64, (k, 4), elements=st.integers(0, 1)))),
             "box_part": torch.from_numpy(parts).to(torch.float64) / CDN_DRAW_STEPS}
    return {"targets": targets, "draws": draws}, config


def crowded_boxes(rng: np.random.Generator, gt: torch.Tensor, q: int, *, reach: int = 64) -> torch.Tensor:
    """``[q, 4]`` normalised cxcywh predictions, each one of the ``[T, 4]`` (T >= 1) normalised cxcywh targets ``gt``
    with its xyxy corners moved by up to ``reach / 1024`` (on the dyadic grid of :func:`grid_boxes`, sides kept
    >= 8 / 1024, inside the unit square; 1/8 of the corners not moved): queries crowd round the objects, as a trained
    decoder's do, so that their class, L1 and GIoU costs for a target are of one size and the cost's weights decide
    which one wins."""
    cx, cy, w, h = gt.unbind(-1)
    corners = torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    which = torch.from_numpy(rng.integers(0, len(gt), q))
    moves = np.where(rng.random((q, 4)) < 1 / 8, 0, rng.integers(-reach, reach + 1, (q, 4)))
    xyxy = corners[which] + torch.from_numpy(moves / 1024)
    lo = xyxy[:, :2].clamp(0.0, 1.0 - 8 / 1024)
    hi = torch.maximum(xyxy[:, 2:].clamp(max=1.0), lo + 8 / 1024)
    return xyxy_to_cxcywh_formula(torch.cat([lo, hi], -1))


#: The largest logit magnitude of :func:`large_logits`: 32 on the grid of 1/64 is exact in float16 (11 significant
#: bits: 2048 steps of 1/64 below 32); bfloat16 rounds it to 1/8 above 16, and the reference sees the rounded inputs.
LARGE_LOGIT = 32.0


def large_logits(rng: np.random.Generator, logits_: torch.Tensor) -> torch.Tensor:
    """``logits_`` (any shape) with each entry, on a coin flip, replaced by one of magnitude in ``[9, 32]`` on the grid
    of :func:`logits` (both bounds among them: :func:`grid_integers`), of either sign: where a trained decoder's
    logits go, and where a focal cost in float16 meets ``1 - sigmoid(x)`` rounding to 0 (from 9 on) and, in float32,
    the ``+ eps`` of DINO's cost deciding (from about 17 on). The other entries keep their values;
    :func:`matching_inputs` adds its tie-free offsets after."""
    shape = tuple(logits_.shape)
    magnitude = grid_integers(rng, 9 * 64, int(LARGE_LOGIT) * 64, shape) / 64
    big = np.where(rng.random(shape) < 0.5, -magnitude, magnitude)
    return torch.where(torch.from_numpy(rng.random(shape) < 0.5), torch.from_numpy(big), logits_)


@st.composite
def matching_inputs(draw, *, softmax: bool = True, ties: bool = False, pixel: bool = False, large: bool = False,
                    num_classes: int = 4) -> dict:
    """Canonical ``assign.hungarian`` inputs for a batch of 1-2 images.

    ``ties=False`` (tie-free): every logit gets a distinct offset, so no two queries cost the same.
    ``ties=True`` (tie-rich): the second query of every image copies the first, so their costs tie
    exactly for every target, and the matching is determined only up to swapping them.
    On about half the draws the queries of each image with targets crowd round them (:func:`crowded_boxes`), in a
    batch of up to 4 images: there the cost's weights and focal parameters decide the matching (each image a
    separate chance), where queries anywhere in the image are matched by their L1 distance alone.
    With ``large``, about half the logits are large (:func:`large_logits`, ``|logit|`` in ``[9, 32]``).
    """
    crowded = draw(st.booleans())
    logits_, boxes_, targets, _ = draw(matching_batch(max_images=4 if crowded else 2, max_queries=5, max_targets=4,
                                                      num_classes=num_classes, softmax=softmax))
    rng = seeded_rng(draw)
    if crowded:
        boxes_ = torch.stack([crowded_boxes(rng, t["boxes"], boxes_.shape[1]) if len(t["boxes"]) else b
                              for b, t in zip(boxes_, targets)])
        # Logits in [-4, 4] on the grid of :func:`logits`, uniform: the costs of crowded queries stay of one size.
        logits_ = torch.from_numpy(rng.integers(-256, 257, tuple(logits_.shape)) / 64)
    if large:
        logits_ = large_logits(rng, logits_)
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


@st.composite
def non_finite_predictions(draw, inputs: dict, where: str, num_classes: int = 4) -> dict:
    """``assign.hungarian`` inputs (:func:`matching_inputs`) with 1-3 entries of ``where`` (``"pred_logits"`` or
    ``"pred_boxes"``), of an image with targets where there is one, made NaN, +inf or -inf -- the first one NaN:
    a diverged decoder's outputs. NaN and a non-finite box coordinate poison their cost entries in every dtype; an
    infinite logit does under a softmax cost (+inf) and where the focal cost's eps is 0 or underflows (float16).

    On about half the draws the first poisoned query is NaN throughout (as a NaN in its decoder state makes every
    logit and coordinate of it) and cannot be left unmatched: its image becomes duplicate detections of one object
    (every query's box the same, one of its drawn boxes) with as many targets as queries,
    all on that box, with drawn labels (below ``num_classes``). Every finite cost is then the negative class term
    plus GIoU 1 and L1 0, and the finite costs of a row differ only in their class term: a matcher that stands a
    huge finite value in for the poisoned costs (transformers' ``finfo.max``) must still tell those close finite
    costs apart beside it, with no spare target to put a poisoned query on."""
    boxes = inputs["pred_boxes"].clone()
    targets = list(inputs["targets"])
    with_targets = [b for b, t in enumerate(targets) if len(t["labels"])] or list(range(len(boxes)))
    first = draw(st.sampled_from(with_targets))
    duplicates = draw(st.booleans())
    if duplicates:
        queries = boxes.shape[1]
        boxes[first] = boxes[first, draw(st.integers(0, queries - 1))]
        labels = draw(st.lists(st.integers(0, num_classes - 1), min_size=queries, max_size=queries))
        targets[first] = {**targets[first], "labels": torch.tensor(labels, dtype=torch.int64),
                          "boxes": boxes[first].clone()}
    poisoned = {**inputs, "pred_boxes": boxes}[where].clone()
    for i in range(draw(st.integers(1, 3))):
        b = first if i == 0 else draw(st.sampled_from(with_targets))
        value = float("nan") if i == 0 else draw(st.sampled_from((float("nan"), float("inf"), float("-inf"))))
        q, c = draw(st.integers(0, poisoned.shape[1] - 1)), draw(st.integers(0, poisoned.shape[2] - 1))
        poisoned[b, q, slice(None) if i == 0 and duplicates else c] = value
    return {**inputs, "pred_boxes": boxes, where: poisoned, "targets": targets}


# --------------------------------------------------------------------------- matcher conventions

#: Realistic values of the matcher's numeric fields (components.contract.MATCHER_FIELDS) in model configs: class
#: weight 1 (facebookresearch/detr set_cost_class, transformers' DetrConfig class_cost) or 2 (Deformable-DETR,
#: DINO, mmdet's FocalLossCost weight, ultralytics' RT-DETR cost_gain), box L1 5 and GIoU 2 (all of them), on a grid
#: of 1/4 around them; focal alpha 0.25 (every one) and what focal-loss sweeps try (0.1-0.9 in steps of 0.05);
#: gamma 2 (the matchers), 1.5 (ultralytics' RT-DETR losses), 0 (no focusing), 1, 3; eps 1e-8 (DINO,
#: Deformable-DETR, ultralytics) or 1e-12 (mmdet FocalLossCost).
MATCHER_FIELD_VALUES = {
    "weight_class": st.integers(2, 16).map(lambda k: k / 4),
    "weight_bbox": st.integers(4, 40).map(lambda k: k / 4),
    "weight_giou": st.integers(2, 16).map(lambda k: k / 4),
    "focal_alpha": st.one_of(st.sampled_from((0.25, 0.5, 0.75)), st.integers(2, 18).map(lambda k: k / 20)),
    "focal_gamma": st.sampled_from((0.0, 1.0, 1.5, 2.0, 3.0)),
    "focal_eps": st.sampled_from((1e-8, 1e-12)),
}
FOCAL_FIELDS = ("focal_alpha", "focal_gamma", "focal_eps")


@st.composite
def matcher_overrides(draw, class_cost: str) -> dict:
    """``assign.hungarian``'s config ``matcher``: ``{}`` (the profile's own values) on about half the draws, otherwise
    new values (:data:`MATCHER_FIELD_VALUES`) for each field on a coin flip, at least one (the focal ones only for
    ``class_cost="focal"``, where they apply), so that an implementation that keeps a constant where the
    convention has a parameter is drawn against it, one field at a time as well as together."""
    fields = [f for f in MATCHER_FIELD_VALUES if class_cost == "focal" or f not in FOCAL_FIELDS]
    return draw_overrides(draw, {f: MATCHER_FIELD_VALUES[f] for f in fields})


def draw_overrides(draw, values: dict[str, st.SearchStrategy]) -> dict:
    """With a composite's ``draw``: ``{}`` (the convention's own values) on about half the draws, otherwise a new
    value (``values[field]``) for each field on a coin flip, at least one: one field at a time as well as together."""
    if draw(st.booleans()):
        return {}
    chosen = [f for f in values if draw(st.booleans())] or [draw(st.sampled_from(list(values)))]
    return {f: draw(values[f]) for f in chosen}


@st.composite
def field_overrides(draw, values: dict[str, st.SearchStrategy]) -> dict:
    """:func:`draw_overrides` as a strategy."""
    return draw_overrides(draw, values)


# --------------------------------------------------------------------------- dense-head conventions

#: Delta coders' ``stds`` in model configs: (1, 1, 1, 1) (mmdet RPN and RetinaNet, torchvision RetinaNet and RPN
#: ``BoxCoder(weights=(1, 1, 1, 1))``), (0.1, 0.1, 0.2, 0.2) (mmdet Faster/Mask R-CNN's RoI head, torchvision's
#: ``BoxCoder((10, 10, 5, 5))``), Cascade R-CNN's later stages (0.05, 0.05, 0.1, 0.1) and (0.033, 0.033, 0.067,
#: 0.067); or x/y and w/h values from those, alike along both axes as in every config.
CODER_STDS = ((1.0, 1.0, 1.0, 1.0), (0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.1, 0.1), (0.033, 0.033, 0.067, 0.067))


@st.composite
def _coder_stds(draw) -> list[float]:
    if draw(st.booleans()):
        return list(draw(st.sampled_from(CODER_STDS)))
    xy = draw(st.sampled_from((0.033, 0.05, 0.1, 0.2, 0.5, 1.0)))
    wh = draw(st.sampled_from((0.067, 0.1, 0.2, 0.5, 1.0)))
    return [xy, xy, wh, wh]


@st.composite
def on_clip_border(draw, anchors: torch.Tensor, deltas: torch.Tensor, max_shape: tuple[int, int],
                   means: list[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(anchors [N, 4] xyxy, deltas [N, 4])`` as given on about half the draws; otherwise 1-N rows moved so that
    their decoded box has a corner exactly on the clip border of ``max_shape`` ``(H, W)``: zero deltas (an exact
    decode where the coder's ``means`` are zero; left as given otherwise) and the anchor shifted along one axis
    until x1 = 0, y1 = 0, x2 = W or y2 = H, on the 1/16 px grid of :func:`boxes_xyxy`. The clip is a kink there:
    mmdet's ``torch.where(x > max, max, x)`` keeps the corner's whole gradient, ``torch.minimum`` would halve it."""
    if (means is not None and any(means)) or draw(st.booleans()):
        return anchors, deltas
    h, w = max_shape
    anchors, deltas = anchors.clone(), deltas.clone()
    for i in draw(st.lists(st.integers(0, len(anchors) - 1), min_size=1, unique=True), label="rows"):
        edge = draw(st.integers(0, 3), label="edge")  # x1, y1, x2, y2
        shift = (0.0, 0.0, float(w), float(h))[edge] - float(anchors[i, edge])
        anchors[i, edge % 2] += shift
        anchors[i, edge % 2 + 2] += shift
        deltas[i] = 0.0
    return anchors, deltas


#: The delta coders' ``means``: 0 in every config (mmdet ``target_means``; torchvision has none), and small
#: non-zero ones (multiples of 0.05 up to 0.2 in size) that ``DeltaXYWHBBoxCoder`` takes, so that a coder that
#: ignores the parameter is drawn against it.
CODER_FIELD_VALUES = {
    "means": st.one_of(st.just((0.0, 0.0, 0.0, 0.0)).map(list),
                       st.lists(st.integers(-4, 4).map(lambda k: k / 20), min_size=4, max_size=4)),
    "stds": _coder_stds(),
}


def coder_overrides() -> st.SearchStrategy[dict]:
    """Config keys of ``coders.delta_xywh_*`` (components/dense_calls.py ``CODER_FIELDS``): ``means`` and ``stds``
    (:data:`CODER_FIELD_VALUES`) as :func:`field_overrides` draws them (absent: the coder's defaults, 0 and 1)."""
    return field_overrides(CODER_FIELD_VALUES)


#: The fields only the delta coder's decode reads: ``wh_ratio_clip`` 16/1000 (mmdet's ``DeltaXYWHBBoxCoder`` and
#: torchvision's ``bbox_xform_clip = log(1000 / 16)``) or values from 1/100 to 1/20 (a clamp of the size deltas at
#: 4.6 to 3.0: decoded sizes stay below 100 times the anchor's, finite in float16); ``add_ctr_clamp`` on (mmdet's
#: YOLOF) with ``ctr_clamp`` 32 px (its default) or 4-64 px.
DECODE_FIELD_VALUES = {
    "wh_ratio_clip": st.sampled_from((16 / 1000, 0.01, 0.02, 0.032, 0.05)),
    "add_ctr_clamp": st.just(True),
    "ctr_clamp": st.one_of(st.just(32.0), st.integers(4, 64).map(float)),
}


def decode_overrides() -> st.SearchStrategy[dict]:
    """Config keys of ``coders.delta_xywh_decode``: :data:`CODER_FIELD_VALUES` and :data:`DECODE_FIELD_VALUES` as
    :func:`field_overrides` draws them."""
    return field_overrides({**CODER_FIELD_VALUES, **DECODE_FIELD_VALUES})


@st.composite
def past_the_size_clamp(draw, deltas: torch.Tensor, config: dict) -> torch.Tensor:
    """``deltas [N, 4]`` as given on about half the draws; otherwise 1-N rows whose size deltas (w, h) denormalise
    (``d * std + mean``, the ``config``'s coder) to 1/4 - 2 beyond ``±|log(wh_ratio_clip)|``, on a grid of 1/64
    past it, on either side: the clamp decides those rows' sizes and zeroes their gradients, and where it is from
    above only (``wh_clamp="upper"``, ``add_ctr_clamp``) the rows below it decode to sizes down to 1/740 of the
    anchor's. A coder that clamps at another ratio, on one side where it should on two, or not at all, fails."""
    if draw(st.booleans()):
        return deltas
    max_ratio = abs(math.log(config.get("wh_ratio_clip", 16 / 1000)))
    means = config.get("means", (0.0,) * 4)
    stds = config.get("stds", (1.0,) * 4)
    deltas = deltas.clone()
    for i in draw(st.lists(st.integers(0, len(deltas) - 1), min_size=1, unique=True), label="rows"):
        for j in (2, 3):
            past = max_ratio + draw(st.integers(16, 128), label="past") / 64
            target = past if draw(st.booleans(), label="above") else -past
            deltas[i, j] = (target - means[j]) / stds[j]
    return deltas


#: The task-aligned assigner's numeric fields (components/dense_calls.py ``TASK_ALIGNED_FIELDS``) in configs: topk 10
#: (ultralytics ``v8DetectionLoss``) or 13 (ultralytics' class default, mmdet TOOD, PP-YOLOE), or 4-13; alpha 0.5
#: (ultralytics) or 1 (TOOD), or 0.25-1.5 in steps of 0.25; beta 6 (all), or 2-8; eps 1e-9 (ultralytics) or up to
#: 1e-4 (below the draws' smallest k-th metric, 1e-3: ultralytics' top-k mask ``max metric > eps`` keeps every real
#: row), which changes the normalised target scores by eps / max metric.
TASK_ALIGNED_FIELD_VALUES = {
    "topk": st.one_of(st.sampled_from((10, 13)), st.integers(4, 13)),
    "alpha": st.one_of(st.sampled_from((0.5, 1.0)), st.integers(1, 6).map(lambda k: k / 4)),
    "beta": st.one_of(st.just(6.0), st.integers(2, 8).map(float)),
    "norm_eps": st.sampled_from((1e-9, 1e-7, 1e-5, 1e-4)),
}


def task_aligned_overrides(convention) -> st.SearchStrategy[dict]:
    """``assign.task_aligned``'s config ``convention_overrides`` for a task-aligned convention
    (:data:`TASK_ALIGNED_FIELD_VALUES`; ``norm_eps`` only where the convention normalises the scores, the only place
    it is read)."""
    return field_overrides({f: v for f, v in TASK_ALIGNED_FIELD_VALUES.items()
                            if f != "norm_eps" or convention.normalise_scores})


#: YOLOv8 loss gains (components/dense_calls.py ``YOLOV8_GAIN_FIELDS``): ultralytics cfg/default.yaml's box 7.5,
#: cls 0.5, dfl 1.5, or values in the ranges its tuner searches (engine/tuner.py: box 1-20, cls 0.1-4, dfl 0.4-12).
YOLOV8_GAIN_VALUES = {
    "box_gain": st.integers(2, 40).map(lambda k: k / 2),
    "cls_gain": st.integers(1, 40).map(lambda k: k / 10),
    "dfl_gain": st.integers(4, 120).map(lambda k: k / 10),
}


@st.composite
def yolov8_gains(draw) -> dict:
    """The YOLOv8 losses' config ``gains``: every gain drawn (:data:`YOLOV8_GAIN_VALUES`, the defaults among them),
    since a YOLOv8 loss example is costly and its tests take few (``costly``)."""
    return {f: draw(v, label=f) for f, v in YOLOV8_GAIN_VALUES.items()}


# --------------------------------------------------------------------------- criterion conventions

#: Realistic values of the set criterion's numeric fields (components.contract.CRITERION_FIELDS) in model configs:
#: class weight 1 (facebookresearch/detr's hard-coded loss_ce weight, DINO config/DINO/DINO_4scale.py cls_loss_coef,
#: transformers' ImageLoss weight_dict, ultralytics DETRLoss loss_gain "class", mmdet's DETR and DINO loss_cls) or 2
#: (Deformable-DETR main.py --cls_loss_coef, mmdet's Deformable-DETR and Conditional-DETR FocalLoss loss_weight), box
#: L1 5 and GIoU 2 (every one: detr main.py --bbox_loss_coef / --giou_loss_coef, DetrConfig bbox_loss_coefficient /
#: giou_loss_coefficient, mmdet L1Loss / GIoULoss loss_weight, DETRLoss loss_gain), on a grid of 1/4 around them;
#: the no-object weight eos_coef 0.1 (detr main.py --eos_coef, DetrConfig eos_coefficient, mmdet's bg_cls_weight)
#: and what ablations try (0.05-0.5 in steps of 0.05, 1: no down-weighting); focal alpha 0.25 (Deformable-DETR
#: --focal_alpha, DeformableDetrConfig focal_alpha, mmdet FocalLoss, DETRLoss alpha) or 0.75 (lyuwenyu/RT-DETR's
#: varifocal criterion, configs/rtdetr/include/rtdetr_r50vd.yml) and the matcher's sweep; gamma 2 (every focal loss)
#: or 1.5 (ultralytics DETRLoss gamma) and the matcher's other values.
CRITERION_FIELD_VALUES = {
    "weight_ce": MATCHER_FIELD_VALUES["weight_class"],
    "weight_bbox": MATCHER_FIELD_VALUES["weight_bbox"],
    "weight_giou": MATCHER_FIELD_VALUES["weight_giou"],
    "eos_coef": st.one_of(st.integers(1, 10).map(lambda k: k / 20), st.just(1.0)),
    "focal_alpha": MATCHER_FIELD_VALUES["focal_alpha"],
    "focal_gamma": MATCHER_FIELD_VALUES["focal_gamma"],
}
#: The same values under mmdet's names (components.contract.MMDET_HEAD_FIELDS): ``loss_cls`` / ``loss_bbox`` /
#: ``loss_iou`` ``loss_weight`` and ``bg_cls_weight`` (configs/detr, deformable_detr, dino, conditional_detr).
MMDET_HEAD_FIELD_VALUES = {
    "loss_weight_cls": CRITERION_FIELD_VALUES["weight_ce"],
    "loss_weight_bbox": CRITERION_FIELD_VALUES["weight_bbox"],
    "loss_weight_iou": CRITERION_FIELD_VALUES["weight_giou"],
    "bg_cls_weight": CRITERION_FIELD_VALUES["eos_coef"],
    "focal_alpha": CRITERION_FIELD_VALUES["focal_alpha"],
    "focal_gamma": CRITERION_FIELD_VALUES["focal_gamma"],
}
#: The fields each classification has: the no-object weight for softmax, alpha and gamma for the sigmoid losses.
SOFTMAX_ONLY = ("eos_coef", "bg_cls_weight")


@st.composite
def convention_overrides(draw, values: dict, classification: str) -> dict:
    """A config's ``criterion`` for fields ``values`` (:data:`CRITERION_FIELD_VALUES`, :data:`MMDET_HEAD_FIELD_VALUES`):
    ``{}`` on about half the draws, otherwise new values for each field on a coin flip, at least one -- the no-object
    weight only under ``classification="softmax"``, alpha and gamma only otherwise, where each applies -- as
    :func:`matcher_overrides` draws the matcher's."""
    softmax = classification == "softmax"

    def applies(field: str) -> bool:
        return softmax if field in SOFTMAX_ONLY else (not softmax if field in FOCAL_FIELDS else True)
    return draw_overrides(draw, {f: v for f, v in values.items() if applies(f)})


@st.composite
def mmdet_head_inputs(draw, *, softmax: bool, num_classes: int = 3) -> dict:
    """``criteria.mmdet_detr_head`` inputs of two decoder layers for 1-2 images of 480 x 640 pixels (targets carry
    ``image_size``): ``all_cls_scores [2, B, Q, K]``, ``all_bbox_preds [2, B, Q, 4]`` normalised cxcywh. On about
    half the draws each image's queries crowd round its targets (:func:`crowded_boxes`), where the match costs'
    weights decide the matching; with a focal classification, on about half the draws half the logits are saturated
    (:func:`large_logits`), where the focal cost's ``eps`` decides."""
    logits_, boxes_, targets = draw(criterion_batch(num_classes=num_classes, softmax=softmax, layers=2, max_images=2,
                                                    max_queries=4, max_targets=4))
    if not softmax and draw(st.booleans()):
        logits_ = large_logits(seeded_rng(draw), logits_)
    if draw(st.booleans()):
        rng = seeded_rng(draw)
        boxes_ = torch.stack([torch.stack([crowded_boxes(rng, t["boxes"], boxes_.shape[2]) if len(t["boxes"]) else b
                                           for b, t in zip(layer, targets)]) for layer in boxes_])
    size = torch.tensor([480.0, 640.0], dtype=torch.float64)
    return {"all_cls_scores": logits_, "all_bbox_preds": boxes_,
            "targets": [{**t, "image_size": size.clone()} for t in targets]}


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
    group's too, and hide the group's decision (zero-overlap GTs are drawn without a group). About a third of
    the draws add ``gt_boxes_ignore`` (:func:`ignore_boxes`), which never reach the group.
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
    out = {"priors": priors, "gt_boxes": gt, "gt_labels": torch.tensor(labels, dtype=torch.int64)}
    ignore = draw(ignore_boxes(priors, max_coord=max_coord))
    if ignore is not None:
        out["gt_boxes_ignore"] = ignore
    return out


def _half(box: list[float], axis: int) -> tuple[list[float], list[float]]:
    """``(box, its left (axis 0) or top (axis 1) half)``, xyxy."""
    half = list(box)
    half[axis + 2] = (box[axis] + box[axis + 2]) / 2
    return box, half


def _exact_in_bfloat16(values: list[float]) -> bool:
    t = torch.tensor(values, dtype=torch.float64)
    return torch.equal(t.to(torch.bfloat16).double(), t)


@st.composite
def ignore_boxes(draw, priors: torch.Tensor, *, max_coord: float) -> torch.Tensor | None:
    """mmdet's ignore regions (``gt_bboxes_ignore``, ``[M, 4]`` xyxy pixels, M >= 1) for ``priors``, on about a
    third of the draws (None otherwise): random boxes below ``1.5 * max_coord`` (:func:`boxes_xyxy`) and, half the
    time, one box that is exactly the left or top half of a prior there, whose IoF with that prior is exactly 0.5
    (mmdet's ``ignore_iof_thr`` in its configs; the comparison is ``>``). The halved side is an even number of
    grid steps, so the midpoint is on the grid, and prior and half are exact in bfloat16, so the IoF is 0.5 in every
    dtype."""
    if not draw(st.integers(0, 2)) == 0:
        return None
    boxes = draw(boxes_xyxy(st.integers(0, 2), min_size=1.0, max_coord=max_coord))
    q = max_coord / 1024  # boxes_xyxy's grid: a side of an even number of steps has its midpoint on the grid
    halves = [_half(b, axis) for b in priors.tolist() if max(b) < 1.5 * max_coord for axis in (0, 1)
              if round((b[axis + 2] - b[axis]) / q) % 2 == 0]
    # Only halves of priors that bfloat16 (8 significant bits) holds exactly, as it holds their halves: the IoF is
    # then 0.5 in every dtype's rounded inputs.
    halves = [h for b, h in halves if _exact_in_bfloat16(b + h)]
    if halves and (len(boxes) == 0 or draw(st.booleans())):
        boxes = torch.cat([boxes, torch.tensor([draw(st.sampled_from(halves))], dtype=torch.float64)])
    if len(boxes) == 0:
        boxes = draw(boxes_xyxy(1, min_size=1.0, max_coord=max_coord))
    return boxes


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

# --------------------------------------------------------------------------- anchor heads

#: Realistic values of an anchor head's numeric fields (components.dense_calls.ANCHOR_HEAD_FIELDS) in mmdet configs:
#: focal alpha and gamma as the set criterion's (RetinaNet's FocalLoss 0.25 and 2); SmoothL1Loss beta 1/9 (RPN,
#: configs/_base_/models/faster-rcnn_r50_fpn.py before it moved to L1) or 1 (the RoI heads); loss weights 1 (RetinaNet,
#: RPN) or 2 (GFL's and ATSS's box terms); ``train_cfg.allowed_border`` -1 (every current config), 0 (mmdet 1.x's RPN)
#: or 8 px; ``pos_weight`` -1 (every config: weight 1) or 2.
ANCHOR_HEAD_FIELD_VALUES = {
    "focal_alpha": CRITERION_FIELD_VALUES["focal_alpha"],
    "focal_gamma": CRITERION_FIELD_VALUES["focal_gamma"],
    "smooth_l1_beta": st.sampled_from((1.0 / 9.0, 1.0)),
    "loss_weight_cls": st.sampled_from((1.0, 2.0)),
    "loss_weight_bbox": st.sampled_from((1.0, 2.0)),
    "allowed_border": st.sampled_from((-1.0, 0.0, 8.0)),
    "pos_weight": st.sampled_from((-1.0, 2.0)),
}

#: The padded size (H, W) of a generated anchor-head batch: every level of RetinaNet's strides 8-128 and AnchorHead's
#: 4-64 has at least one cell.
ANCHOR_HEAD_PAD = (64, 96)


def _best_anchor_is_decided(box: np.ndarray, anchors: np.ndarray, gap: float = 1e-3) -> bool:
    """Whether the xyxy ``box``'s best IoU with ``anchors`` ``[A, 4]`` decides its low-quality matches in every dtype:
    clear of the next by ``gap`` relatively, or an exact tie. A box inside several anchors of one area (RetinaNet's
    ratios keep the area) has the same IoU with each in real arithmetic, but their sides are irrational, so mmdet's
    low-quality step (``gt_max_assign_all``: every anchor equal to the GT's best) takes whichever of them its rounding
    makes equal: a tie decided by rounding, not by a convention. The tie is exact where every anchor within ``gap`` of
    the best has integer corners and the same sides, and the box has integer corners and lies inside each: then the
    intersection is the box and every IoU formula gives them one value in every dtype."""
    from oracle.boxes import iou
    ious = iou(torch.from_numpy(np.asarray(box, dtype=np.float64)[None]), torch.from_numpy(anchors))[0].numpy()
    best = ious.max(initial=0.0)
    group = anchors[ious > best * (1.0 - gap)]
    if best <= 0.0 or len(group) < 2:
        return True
    sides = group[:, 2:] - group[:, :2]
    return bool((group == np.round(group)).all() and (box == np.round(box)).all() and (sides == sides[0]).all()
                and (group[:, :2] <= box[:2]).all() and (group[:, 2:] >= box[2:]).all())


def _box_in_neighbouring_anchors(rng: np.random.Generator, anchors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """An integer xyxy box inside ``anchors[k]`` (``k`` drawn from ``candidates``, anchors with integer corners) and
    the next anchor of its sides to the right, below, or both (then the diagonal one too): 2 or 4 anchors with the
    same IoU with it exactly (:func:`_best_anchor_is_decided`). Its sides are 30-100 % of the region's, so that the
    IoU often falls below the assigners' thresholds: the low-quality step then decides, for all tied anchors."""
    a = anchors[rng.choice(candidates)]
    same = anchors[(anchors[:, 2:] - anchors[:, :2] == a[2:] - a[:2]).all(1)]
    region = a.copy()
    for axis in ([0], [1], [0, 1])[rng.integers(0, 3)]:
        other = 1 - axis
        after = same[(same[:, other] == a[other]) & (same[:, axis] > a[axis]), axis]
        if len(after):
            region[axis] = after.min()
    lo, hi = region[:2], region[2:]
    side = np.floor((hi - lo) * rng.uniform(0.3, 1.0, 2))
    corner = lo + np.floor(rng.uniform(0.0, 1.0, 2) * (hi - lo - side + 1))
    return np.concatenate([corner, corner + side])


@st.composite
def anchor_head_inputs(draw, head, *, num_classes: int = 3) -> tuple[dict, dict]:
    """``(inputs, config)`` of ``criteria.anchor_head`` for the preset ``head`` (its name): 1-2 images padded to
    :data:`ANCHOR_HEAD_PAD`, each with its own ``img_shape`` (32-64 x 32-96 px: anchors beyond it are invalid), and
    0-4 targets each (an image with no anchor inside its ``allowed_border`` gets the padded size: mmdet raises
    on it); ``cls_scores [B, A * C', H_l, W_l]`` and ``bbox_preds [B, A * 4, H_l, W_l]`` per level (mmdet's
    layout) from a drawn seed. A target is an anchor inside the image jittered by up to 3 px (its best anchor is then
    clear of the others), a random box of sides >= 4 px, or an integer box inside 2 or 4 neighbouring anchors of
    integer corners (:func:`_box_in_neighbouring_anchors`: an exact tie at the GT's best IoU, where the low-quality
    step and ``gt_max_assign_all`` decide), kept where its best IoU decides its matches in every dtype
    (:func:`_best_anchor_is_decided`: a tie decided by rounding is not a convention). On
    about half the draws the config replaces some of the head's numeric fields (:data:`ANCHOR_HEAD_FIELD_VALUES`;
    focal alpha and gamma only for a focal head, beta only for a smooth-L1 one)."""
    from components.dense_calls import anchor_head_config
    conf = anchor_head_config({"head": head})
    gen = conf.anchor_generator
    fields = {f: v for f, v in ANCHOR_HEAD_FIELD_VALUES.items()
              if (conf.classification == "sigmoid_focal" or not f.startswith("focal_"))
              and (conf.regression == "smooth_l1" or f != "smooth_l1_beta")}
    overrides = draw_overrides(draw, fields)
    batch = draw(st.integers(1, 2))
    metas = [{"img_shape": [draw(st.integers(32, ANCHOR_HEAD_PAD[0])), draw(st.integers(32, ANCHOR_HEAD_PAD[1]))],
              "pad_shape": list(ANCHOR_HEAD_PAD)} for _ in range(batch)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    sizes = [(-(-ANCHOR_HEAD_PAD[0] // int(s)), -(-ANCHOR_HEAD_PAD[1] // int(s))) for s in gen.strides]
    a = gen.num_base_anchors[0]
    cls_scores = [torch.from_numpy(rng.standard_normal((batch, a * conf.cls_out_channels(num_classes), h, w)) * 2)
                  for h, w in sizes]
    bbox_preds = [torch.from_numpy(rng.standard_normal((batch, a * 4, h, w)) * 0.3) for h, w in sizes]
    anchors = torch.cat(gen.grid_anchors(sizes)).numpy()
    border = overrides.get("allowed_border", conf.allowed_border)
    targets = []
    for meta in metas:
        h, w = meta["img_shape"]
        if border >= 0 and not ((anchors[:, 0] >= -border) & (anchors[:, 1] >= -border) & (anchors[:, 2] < w + border)
                                & (anchors[:, 3] < h + border)).any():
            # No anchor inside the image's border (mmdet raises ValueError, as the reference does): the padded size.
            meta["img_shape"] = list(ANCHOR_HEAD_PAD)
            h, w = ANCHOR_HEAD_PAD
        n = draw(st.integers(0, 4))
        inside = np.nonzero((anchors[:, 0] >= 0) & (anchors[:, 1] >= 0) & (anchors[:, 2] <= w)
                            & (anchors[:, 3] <= h))[0]
        # The anchors the assigner sees: every one without a border test, else those within allowed_border.
        seen = anchors if border < 0 else anchors[(anchors[:, 0] >= -border) & (anchors[:, 1] >= -border)
                                                  & (anchors[:, 2] < w + border) & (anchors[:, 3] < h + border)]
        integer = inside[(anchors[inside] == np.round(anchors[inside])).all(1)]
        boxes = []
        for k in rng.choice(inside, size=min(n, len(inside)), replace=False):
            kind = rng.integers(0, 3 if len(integer) else 2)
            if kind == 0:
                box = np.clip(anchors[k] + rng.uniform(-3.0, 3.0, 4), 0, [w, h, w, h])
            elif kind == 1:
                x1, y1 = rng.uniform(0, w - 4), rng.uniform(0, h - 4)
                box = np.array([x1, y1, rng.uniform(x1 + 4, w), rng.uniform(y1 + 4, h)])
            else:
                box = _box_in_neighbouring_anchors(rng, anchors, integer)
            if _best_anchor_is_decided(box, seen):
                boxes.append(box)
        targets.append({"boxes": torch.tensor(np.array(boxes).reshape(-1, 4), dtype=torch.float64),
                        "labels": torch.from_numpy(rng.integers(0, num_classes, len(boxes)))})
    config = {"head": head, "num_classes": num_classes, "img_metas": metas}
    if overrides:
        config["head_overrides"] = overrides
    return {"cls_scores": cls_scores, "bbox_preds": bbox_preds, "targets": targets}, config


# --------------------------------------------------------------------------- task-aligned assigner and YOLOv8

#: ``(featmap_sizes, strides)`` of the generated YOLOv8 inputs: a 32 px image whose coarsest level is one cell
#: (A = 21), a 64 px one (A = 84), a 64 x 32 px one, and a 64 px one at strides 4, 8, 16 (A = 336), where a GT
#: wider than (reg_max - 1) * 4 = 60 px has sides beyond the regressable range of its level-0 anchors.
YOLO_LEVELS = {
    "32px-one-cell-coarsest": ([[4, 4], [2, 2], [1, 1]], [8, 16, 32]),
    "64px": ([[8, 8], [4, 4], [2, 2]], [8, 16, 32]),
    "64x32px": ([[4, 8], [2, 4], [1, 2]], [8, 16, 32]),
    "64px-beyond-reg-max": ([[16, 16], [8, 8], [4, 4]], [4, 8, 16]),
}
#: The layout of :data:`YOLO_LEVELS` whose level-0 regressable range is shorter than its image.
BEYOND_REG_MAX = "64px-beyond-reg-max"


def beyond_reg_max_side(featmap_sizes, strides, reg_max: int) -> int:
    """The GT side, in 1/:data:`GT_STEPS` of the image, of ``(reg_max - 1) + 1/2`` level-0 strides: a GT that long
    (at most half a stride from an image border) holds level-0 anchors, half a stride in from its border, whose
    distance to its far side is at least ``reg_max - 1`` bins, beyond the DFL targets' clamp at ``reg_max - 1 -
    0.01`` (ultralytics utils/tal.py ``bbox2dist``); 124 steps (62 px) in :data:`BEYOND_REG_MAX`. Above
    :data:`GT_STEPS` where the image is smaller than that."""
    h, w = featmap_sizes[0][0] * strides[0], featmap_sizes[0][1] * strides[0]
    return math.ceil(GT_STEPS * (reg_max - 0.5) * strides[0] / min(h, w))


#: One cell per level (A = 3): below any top-k, only for a convention that clips it (mmdet's ``min(topk, A)``).
ONE_CELL_PER_LEVEL = ([[1, 1], [1, 1], [1, 1]], [8, 16, 32])
#: Steps of a GT's corner across the image (normalised corners are multiples of 1/128): corners, their sums,
#: centres and half-sides are exact with 8 significant bits (bfloat16), and so is every anchor-to-side
#: distance, so a centre test decides alike in every dtype (docs/conformance.md, "Kinks").
GT_STEPS = 128


def tie_gap(dtype: torch.dtype) -> float:
    """The relative gap kept between the k-th and (k+1)-th alignment metric of a GT, and between an anchor's two
    best overlaps: metric = score^alpha * overlap^6 multiplies an overlap's relative rounding error by 6, so the
    gap is a few hundred ULPs of the run's dtype (float32's float64 runs included: a candidate may compute in it)."""
    return {torch.float16: 0.08, torch.bfloat16: 0.5}.get(dtype, 0.01)


#: The smallest k-th alignment metric of a tie-free draw: far above float16's subnormals (6.1e-5).
METRIC_FLOOR = 1e-3


def task_aligned_tie_free(assignment, mask_gt: torch.Tensor, topk: int, *, gap: float) -> bool:
    """Whether a reference :class:`~oracle.assign.task_aligned.TaskAlignedAssignment` (``[B, n, A]`` metrics and
    overlaps) has no decision a rounding could flip: every real GT row's k-th metric (``k = min(topk, A)``) is at
    least :data:`METRIC_FLOOR` and exceeds the (k+1)-th by ``gap`` relatively (so no tied zero metrics reach its
    top-k), and every anchor in several GTs' top-k has a best overlap ``gap`` above its second."""
    metric, overlaps = assignment.align_metric, assignment.overlaps
    b, n, a = metric.shape
    if n == 0 or not bool(mask_gt.any()):
        return True
    k = min(topk, a)
    if k < a:
        ranked = metric.topk(k + 1, dim=-1).values
        kth, following = ranked[..., k - 1], ranked[..., k]
        fine = (kth >= METRIC_FLOOR) & (kth - following >= gap * kth)
        if not bool(fine[mask_gt].all()):
            return False
        chosen = (metric >= kth[..., None]) & assignment.eligible & mask_gt[..., None]
    else:
        chosen = assignment.eligible & mask_gt[..., None]
    several = chosen.sum(1) > 1  # [B, A]
    if not bool(several.any()):
        return True
    images, anchors = torch.nonzero(several, as_tuple=True)
    best2 = overlaps[images, :, anchors].topk(2, dim=-1).values
    return bool((best2[:, 0] - best2[:, 1] >= gap * best2[:, 0]).all())


@st.composite
def yolo_targets(draw, featmap_sizes, strides, *, max_images: int = 2, max_targets: int = 3,
                 first_min_side: int = 0) -> list[np.ndarray]:
    """Per image, ``[n_i, 4]`` xyxy GT boxes normalised to the image, corners multiples of 1/:data:`GT_STEPS`.
    Sides are at least ``4 / W_0`` of the image (four level-0 cells: with the other levels' anchors, enough
    centres inside for any top-k of 10-13), up to the whole image; each image's first GT has both sides at least
    ``first_min_side`` steps. Batches are: random (0 to ``max_targets`` per image), without any target, or one
    target per image."""
    b = draw(st.integers(1, max_images))
    shape = draw(st.sampled_from(("random", "batch-without-targets", "one-per-image")))
    counts = {"random": lambda: draw(st.lists(st.integers(0, max_targets), min_size=b, max_size=b)),
              "batch-without-targets": lambda: [0] * b, "one-per-image": lambda: [1] * b}[shape]()
    h0, w0 = featmap_sizes[0]
    lo = [min(GT_STEPS, GT_STEPS * 4 // s) for s in (w0, h0)]
    out = []
    for count in counts:
        boxes = []
        for j in range(count):
            wh = [draw(st.integers(max(lo[i], first_min_side if j == 0 else 0), GT_STEPS)) for i in range(2)]
            xy = [draw(st.integers(0, GT_STEPS - wh[i])) for i in range(2)]
            boxes.append([xy[0], xy[1], xy[0] + wh[0], xy[1] + wh[1]])
        out.append(np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / GT_STEPS)
    return out


def _boxes_near_gts(rng: np.random.Generator, points: np.ndarray, gts: np.ndarray, scale: float) -> np.ndarray:
    """``[A, 4]`` predicted xyxy boxes (pixels): for an anchor inside GTs, a copy of one of them with each side moved
    by up to 15 % of its length; elsewhere a box of 1-3 ``scale`` about the anchor."""
    a = len(points)
    half = rng.uniform(0.5, 1.5, size=(a, 2)) * scale
    out = np.concatenate([points - half, points + half], axis=1)
    for i, p in enumerate(points):
        inside = np.nonzero((gts[:, 0] < p[0]) & (p[0] < gts[:, 2]) & (gts[:, 1] < p[1]) & (p[1] < gts[:, 3]))[0]
        if len(inside):
            g = gts[rng.choice(inside)]
            size = np.tile(g[2:] - g[:2], 2)
            out[i] = g + rng.uniform(-0.15, 0.15, size=4) * size
    return np.concatenate([np.minimum(out[:, :2], out[:, 2:]), np.maximum(out[:, :2], out[:, 2:])], axis=1)


#: How far inside a GT's side :func:`side_by_the_margin` moves an anchor point: 1/64 px, between mmdet's centre
#: margin (0.01 px) and twice it, so a centre test with another margin decides otherwise. Exact in float16 for
#: coordinates below 32 px and in float32, not in bfloat16 (8 significant bits).
MARGIN_OFFSET = 1 / 64


@st.composite
def side_by_the_margin(draw, per_image: list[np.ndarray], points: np.ndarray) -> list[np.ndarray]:
    """Per-image ``[n_i, 4]`` xyxy pixel GTs as given on about half the draws; otherwise one GT's side moved inward
    to :data:`MARGIN_OFFSET` px short of the nearest anchor point ``points [A, 2]`` inside it along that axis, so
    that the point's centre test (``distance > centre_margin``) turns on the margin. No GT, no change."""
    with_gts = [i for i, g in enumerate(per_image) if len(g)]
    if not with_gts or draw(st.booleans()):
        return per_image
    i = draw(st.sampled_from(with_gts), label="image")
    k = draw(st.integers(0, len(per_image[i]) - 1), label="gt")
    side = draw(st.integers(0, 3), label="side")  # x1, y1, x2, y2
    box, axis = per_image[i][k], side % 2
    along = np.unique(points[:, axis])
    inside = along[(box[axis] < along) & (along < box[axis + 2])]
    if not len(inside):
        return per_image
    out = [g.copy() for g in per_image]
    out[i][k, side] = inside[0] - MARGIN_OFFSET if side < 2 else inside[-1] + MARGIN_OFFSET
    return out


@st.composite
def task_aligned_inputs(draw, name: str, *, gap: float, num_classes: int = 3,
                        margin_offsets: bool = False) -> tuple[dict, dict]:
    """``(inputs, config)``: tie-free ``assign.task_aligned`` inputs under the preset ``name``
    (components/contract.py): pd_scores ``[B, A, C]`` in [0.05, 0.95],
    pd_bboxes ``[B, A, 4]`` xyxy pixels (near a GT containing the anchor: positive overlaps), anchor_points
    ``[A, 2]`` pixels (:data:`YOLO_LEVELS`; one cell per level when the convention clips its top-k), gt_labels
    ``[B, n]``, gt_bboxes ``[B, n, 4]`` xyxy pixels (padded rows zero), mask_gt ``[B, n]``. Draws that are not
    :func:`task_aligned_tie_free` at ``gap`` are rejected. config: ``convention`` (``name``), ``stride_val``
    (ultralytics' of the draw's strides) and, on about half the draws, ``convention_overrides``
    (:func:`task_aligned_overrides`). With ``margin_offsets`` (a dtype where :data:`MARGIN_OFFSET` is exact), one GT
    side in about half the draws lies that far from an anchor point (:func:`side_by_the_margin`)."""
    from hypothesis import assume

    from oracle import conventions
    from oracle.anchors import anchor_points
    from oracle.assign.task_aligned import task_aligned_assign, ultralytics_stride_val
    from components.dense_calls import task_aligned_convention
    overrides = draw(task_aligned_overrides(conventions.named(name, conventions.TaskAlignedConvention)),
                     label="convention_overrides")
    config = {"convention": name, **({"convention_overrides": overrides} if overrides else {})}
    convention = task_aligned_convention(config)
    layouts = list(YOLO_LEVELS.values()) + ([ONE_CELL_PER_LEVEL] if convention.clip_topk else [])
    featmap_sizes, strides = draw(st.sampled_from(layouts))
    grid, stride = anchor_points(featmap_sizes, strides)
    points = grid * stride
    h, w = featmap_sizes[0][0] * strides[0], featmap_sizes[0][1] * strides[0]
    per_image = [g * np.array([w, h, w, h]) for g in draw(yolo_targets(featmap_sizes, strides))]
    if margin_offsets:
        per_image = draw(side_by_the_margin(per_image, points.numpy()), label="side by the margin")
    b, n, a = len(per_image), max(len(g) for g in per_image), len(points)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    gt, mask = np.zeros((b, n, 4)), np.zeros((b, n), dtype=bool)
    pred = np.zeros((b, a, 4))
    for i, g in enumerate(per_image):
        gt[i, :len(g)], mask[i, :len(g)] = g, True
        pred[i] = _boxes_near_gts(rng, points.numpy(), g, float(strides[0]))
    inputs = {"pd_scores": torch.from_numpy(rng.uniform(0.05, 0.95, size=(b, a, num_classes))),
              "pd_bboxes": torch.from_numpy(pred), "anchor_points": points,
              "gt_labels": torch.from_numpy(rng.integers(0, num_classes, size=(b, n))),
              "gt_bboxes": torch.from_numpy(gt), "mask_gt": torch.from_numpy(mask)}
    config["stride_val"] = ultralytics_stride_val(strides)
    assignment = task_aligned_assign(*inputs.values(), convention=convention, stride_val=config["stride_val"])
    assume(task_aligned_tie_free(assignment, inputs["mask_gt"], convention.topk, gap=gap))
    return inputs, config


def _dfl_logits(rng: np.random.Generator, points: np.ndarray, stride: np.ndarray, boxes: np.ndarray,
                reg_max: int) -> np.ndarray:
    """``[A, 4 * reg_max]`` side-major DFL logits whose expectation is near the ltrb distances (grid units, in
    ``[0, reg_max - 1]``) from each anchor point to ``boxes`` ``[A, 4]`` (xyxy pixels): ``-c (bin - d)^2`` with
    ``c`` in [0.3, 1.5] per side, plus noise."""
    d = np.concatenate([points - boxes[:, :2], boxes[:, 2:] - points], axis=1) / stride
    d = np.clip(d, 0.0, reg_max - 1)[..., None]
    c = rng.uniform(0.3, 1.5, size=d.shape)
    bins = np.arange(reg_max, dtype=np.float64)
    return (-c * (bins - d) ** 2 + rng.normal(0.0, 0.1, size=d.shape[:2] + (reg_max,))).reshape(len(points), -1)


def _masks(rng: np.random.Generator, per_image: list[np.ndarray], shape: tuple[int, int], overlap: bool) -> np.ndarray:
    """Target masks filled (80 % of the pixels) inside each normalised xyxy box: ``[B, H, W]`` index maps (the
    ``k``-th target of an image is ``k + 1``, later targets overwrite) or ``[N, H, W]`` per-target masks."""
    h, w = shape
    per_target = []
    for boxes in per_image:
        for box in boxes:
            x1, y1 = np.floor(box[:2] * [w, h]).astype(int)
            x2, y2 = np.ceil(box[2:] * [w, h]).astype(int)
            m = np.zeros((h, w))
            m[y1:y2, x1:x2] = rng.random((y2 - y1, x2 - x1)) < 0.8
            per_target.append(m)
    if not overlap:
        return np.asarray(per_target).reshape(-1, h, w)
    maps, t = np.zeros((len(per_image), h, w)), 0
    for i, boxes in enumerate(per_image):
        for k in range(len(boxes)):
            maps[i][per_target[t] > 0] = k + 1
            t += 1
    return maps


@st.composite
def yolov8_inputs(draw, *, gap: float, segmentation: bool = False, overlap_mask: bool = True,
                  num_classes: int = 3, reg_max: int = 16) -> tuple[dict, dict]:
    """``(inputs, config)`` of ``criteria.yolov8_detection`` (or ``_segmentation``), tie-free for the task-aligned
    assigner inside (:func:`task_aligned_tie_free` at ``gap``, on the reference's assignment).

    inputs: pred_distri ``[B, A, 4 * reg_max]`` (DFL logits of boxes near a GT containing the anchor),
    pred_logits ``[B, A, C]``, batch (batch_idx ``[N]``, cls ``[N]``, bboxes ``[N, 4]`` normalised cxcywh on the
    1/:data:`GT_STEPS` grid: :func:`yolo_targets`); segmentation adds mask_coefficients ``[B, A, 4]``, proto
    ``[B, 4, Hm, Wm]`` (standard normal, or in [16, 64]: large prototypes, whose float16 sum overflows) and
    batch.masks (index maps or per-target masks, :func:`_masks`) of a quarter of the image, of the prototypes'
    size or twice it. config: featmap_sizes, strides (:data:`YOLO_LEVELS`), overlap_mask for segmentation, gains
    (:func:`yolov8_gains`).
    """
    from hypothesis import assume

    from oracle.anchors import anchor_points
    from oracle.criteria import yolov8 as Y
    # Half the draws reach beyond the regressable range: each image's first GT spans all but half a level-0 stride
    # of the BEYOND_REG_MAX image, so that positive anchors' DFL targets are clamped (beyond_reg_max_side).
    beyond = draw(st.booleans(), label="a GT beyond the regressable range")
    featmap_sizes, strides = YOLO_LEVELS[BEYOND_REG_MAX] if beyond else \
        draw(st.sampled_from(list(YOLO_LEVELS.values())))
    grid, stride = anchor_points(featmap_sizes, strides)
    points, stride = (grid * stride).numpy(), stride.numpy()
    h, w = featmap_sizes[0][0] * strides[0], featmap_sizes[0][1] * strides[0]
    first_min_side = beyond_reg_max_side(featmap_sizes, strides, reg_max) if beyond else 0
    per_image = draw(yolo_targets(featmap_sizes, strides, first_min_side=first_min_side))
    b, a = len(per_image), len(points)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1), label="seed"))
    distri = np.stack([_dfl_logits(rng, points, stride, _boxes_near_gts(rng, points, g * [w, h, w, h],
                                                                         float(strides[0])), reg_max)
                       for g in per_image])
    xyxy = np.concatenate(per_image)
    batch = {"batch_idx": torch.from_numpy(np.repeat(np.arange(b), [len(g) for g in per_image])),
             "cls": torch.from_numpy(rng.integers(0, num_classes, size=len(xyxy))),
             "bboxes": torch.from_numpy(np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]],
                                                       axis=1))}
    inputs = {"pred_distri": torch.from_numpy(distri),
              "pred_logits": torch.from_numpy(rng.normal(0.0, 2.0, size=(b, a, num_classes))), "batch": batch}
    config = {"featmap_sizes": featmap_sizes, "strides": strides, "gains": draw(yolov8_gains(), label="gains")}
    if segmentation:
        mask_shape = (h // 4, w // 4)
        factor = draw(st.sampled_from((1, 2)), label="masks / prototypes")
        proto_shape = (b, 4, mask_shape[0] // factor, mask_shape[1] // factor)
        large = draw(st.booleans(), label="large prototypes")
        proto = rng.uniform(16.0, 64.0, size=proto_shape) if large else rng.normal(size=proto_shape)
        inputs.update(mask_coefficients=torch.from_numpy(rng.normal(size=(b, a, 4))), proto=torch.from_numpy(proto))
        batch["masks"] = torch.from_numpy(_masks(rng, per_image, mask_shape, overlap_mask))
        config["overlap_mask"] = overlap_mask
    result = Y.yolov8_detection_loss(inputs["pred_distri"], inputs["pred_logits"], featmap_sizes, strides, batch)
    n = max(len(g) for g in per_image)
    mask_gt = torch.arange(n)[None, :] < torch.tensor([len(g) for g in per_image])[:, None]
    assume(task_aligned_tie_free(result.assignment, mask_gt, Y.YOLOV8_ULTRALYTICS.assigner.topk, gap=gap))
    return inputs, config
