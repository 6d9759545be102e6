"""oracle.losses.distribution_focal_loss and oracle.criteria.yolov8: hand values, edge cases, bad input, and
cross-checks (values and gradients) against ultralytics 8.4.190's DFLoss, v8DetectionLoss, v8SegmentationLoss."""

from __future__ import annotations

import dataclasses
import math
import types

import pytest
import torch
import torch.nn.functional as F

from oracle import losses as L
from oracle.assign.task_aligned import TaskAlignedAssignment
from oracle.criteria.yolov8 import (YOLOV8_ULTRALYTICS, YOLOV8_ULTRALYTICS_LEGACY, yolov8_detection_loss,
                                    yolov8_segmentation_loss)
from oracle.errors import OracleInputError
from oracle.masks import downsample_masks

from ..conftest import import_or_skip

STRIDES = [8.0, 16.0, 32.0]
SIZES = [(8, 8), (4, 4), (2, 2)]  # a 64 x 64 image, A = 84
A = 84
R = 16


# --------------------------------------------------------------------------- DFL

def test_dfl_hand_values():
    # R = 3 bins with probabilities (1/2, 1/4, 1/4). Sides: targets 0.5, 2.5 (clamped to 1.99), -1 (clamped to 0), 1.
    #   0.5  -> -(0.5 log 1/2 + 0.5 log 1/4) = 1.5 ln 2
    #   1.99 -> bins 1, 2 with weights 0.01, 0.99 -> -(log 1/4) = 2 ln 2
    #   0    -> bin 0 weight 1 (bin 1 weight 0) -> ln 2
    #   1    -> bin 1 weight 1 -> 2 ln 2
    # mean over the four sides = 6.5 ln 2 / 4.
    logits = torch.log(torch.tensor([0.5, 0.25, 0.25])).expand(4, 3)[None]
    targets = torch.tensor([[0.5, 2.5, -1.0, 1.0]])
    loss = L.distribution_focal_loss(logits, targets, reduction="none")
    assert loss.shape == (1,)
    assert loss.item() == pytest.approx(6.5 * math.log(2) / 4, rel=1e-14)
    assert targets.tolist() == [[0.5, 2.5, -1.0, 1.0]]  # not clamped in place (ultralytics' DFLoss is)


def test_dfl_matches_ultralytics_dfloss_with_gradients():
    loss_mod = import_or_skip("ultralytics.utils.loss", "pip install ultralytics==8.4.190")
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, R, generator=gen, requires_grad=True)
    targets = torch.rand(7, 4, generator=gen) * 18 - 1  # some below 0 and above 14.99
    weight = torch.rand(7, generator=gen)
    mine = L.distribution_focal_loss(logits, targets, weight=weight, reduction="sum")
    logits_u = logits.detach().clone().requires_grad_(True)
    theirs = (loss_mod.DFLoss(R)(logits_u.view(-1, R), targets.clone()) * weight[:, None]).sum()
    torch.testing.assert_close(mine, theirs, rtol=1e-14, atol=0)
    mine.backward()
    theirs.backward()
    torch.testing.assert_close(logits.grad, logits_u.grad, rtol=1e-13, atol=1e-16)


def test_dfl_bad_input():
    with pytest.raises(OracleInputError, match=r"logits: expected shape \[..., 4, R\]"):
        L.distribution_focal_loss(torch.zeros(3, 16), torch.zeros(3))
    with pytest.raises(OracleInputError, match="targets: expected shape"):
        L.distribution_focal_loss(torch.zeros(3, 4, 16), torch.zeros(3, 3))
    with pytest.raises(OracleInputError, match="targets: expected finite values"):
        L.distribution_focal_loss(torch.zeros(1, 4, 16), torch.tensor([[1.0, math.nan, 0, 0]]))


# --------------------------------------------------------------------------- ultralytics harness

class _FakeHead(torch.nn.Module):
    def __init__(self, nc, reg_max, stride):
        super().__init__()
        self.nc, self.reg_max, self.stride = nc, reg_max, torch.tensor(stride)
        self.dummy = torch.nn.Parameter(torch.zeros(1))


class _TinyModel(torch.nn.Module):
    """What v8DetectionLoss reads from a model (survey §4.1): parameters, args, model[-1].nc/reg_max/stride."""

    def __init__(self, nc, overlap=True, strides=STRIDES):
        super().__init__()
        self.model = torch.nn.ModuleList([_FakeHead(nc, R, strides)])
        self.args = types.SimpleNamespace(box=7.5, cls=0.5, dfl=1.5, overlap_mask=overlap)


class _Float64Masks(torch.Tensor):
    """Masks whose ``.float()`` keeps float64: v8SegmentationLoss casts ``batch["masks"]`` with ``.float()`` (loss.py
    L544), which makes its mask BCE float32 (``binary_cross_entropy_with_logits`` returns the target's dtype)."""

    def float(self, *args, **kwargs):
        return self.double()


def _ultralytics(distri, logits, batch, *, sizes=SIZES, strides=STRIDES, coef=None, proto=None, overlap=True,
                 float64_masks=True):
    """ultralytics' loss vector, the gradients of its sum w.r.t. the predictions (float64 default dtype), and
    the assignment its assigner returned (target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx)."""
    loss_mod = import_or_skip("ultralytics.utils.loss", "pip install ultralytics==8.4.190")
    assert torch.get_default_dtype() == torch.float64  # tests/conftest.py; ultralytics allocates in it
    leaves = [t.detach().clone().requires_grad_(True) for t in (distri, logits, coef, proto) if t is not None]
    preds = {"boxes": leaves[0].permute(0, 2, 1), "scores": leaves[1].permute(0, 2, 1),
             "feats": [torch.zeros(distri.shape[0], 1, h, w) for h, w in sizes]}
    ub = {"batch_idx": batch["batch_idx"].double(), "cls": batch["cls"].double()[:, None], "bboxes": batch["bboxes"]}
    if coef is None:
        crit = loss_mod.v8DetectionLoss(_TinyModel(logits.shape[-1], strides=strides))
    else:
        crit = loss_mod.v8SegmentationLoss(_TinyModel(logits.shape[-1], overlap, strides=strides))
        preds.update(mask_coefficient=leaves[2].permute(0, 2, 1), proto=leaves[3])
        ub["masks"] = batch["masks"].as_subclass(_Float64Masks) if float64_masks else batch["masks"]
    assigner, recorded = crit.assigner, []
    crit.assigner = lambda *args: recorded.append(assigner(*args)) or recorded[-1]
    loss, _ = crit(preds, ub)
    loss.sum().backward()
    if coef is not None:
        loss = loss[:4]  # the semantic term (always 0 here) is not modelled
    return loss.detach().as_subclass(torch.Tensor), [leaf.grad for leaf in leaves], recorded[0]


def _reference_with_grads(fn, *tensors, **kwargs):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    result = fn(*leaves, **kwargs)
    result.total.backward()
    return result, [leaf.grad for leaf in leaves]


def _predictions(seed, b=2, c=3, sizes=SIZES, nm=None, proto_size=(16, 16)):
    gen = torch.Generator().manual_seed(seed)
    a = sum(h * w for h, w in sizes)
    out = [torch.randn(b, a, 4 * R, generator=gen), torch.randn(b, a, c, generator=gen)]
    if nm:
        out += [torch.randn(b, a, nm, generator=gen), torch.randn(b, nm, *proto_size, generator=gen)]
    return out


BATCH = {"batch_idx": torch.tensor([0, 0, 1]), "cls": torch.tensor([0, 2, 1]),
         "bboxes": torch.tensor([[0.3, 0.3, 0.4, 0.35], [0.6, 0.65, 0.5, 0.6], [0.5, 0.5, 0.3, 0.6]])}


def _masks_for(batch, size, b=2, overlap=True):
    """Index maps (overlap) or per-target masks: each target's box, rasterised at ``size``."""
    h, w = size
    ys = (torch.arange(h) + 0.5)[:, None] / h
    xs = (torch.arange(w) + 0.5)[None, :] / w
    per_target = []
    for cx, cy, bw, bh in batch["bboxes"].tolist():
        per_target.append(((xs - cx).abs() < bw / 2 * 0.8) & ((ys - cy).abs() < bh / 2 * 0.9))
    per_target = torch.stack(per_target).double() if per_target else torch.zeros(0, h, w)
    if not overlap:
        return per_target
    maps = torch.zeros(b, h, w)
    seen = [0] * b
    for k, img in enumerate(batch["batch_idx"].tolist()):
        seen[img] += 1
        maps[img][per_target[k] > 0] = seen[img]  # later targets overwrite earlier ones, as in a real index map
    return maps


def _assert_same(ref, ref_grads, ul_loss, ul_grads):
    # Both in float64: the assignment is identical and the sums run in other orders (rounding only).
    torch.testing.assert_close(ref.loss.detach(), ul_loss, rtol=1e-11, atol=1e-12)
    for mine, theirs in zip(ref_grads, ul_grads):
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-13)


# --------------------------------------------------------------------------- detection vs ultralytics

DETECTION_CASES = {
    "normal": BATCH,
    "one image without targets": {k: v[:2] for k, v in BATCH.items()},
    "batch without targets": {"batch_idx": torch.zeros(0, dtype=torch.int64), "cls": torch.zeros(0, dtype=torch.int64),
                              "bboxes": torch.zeros(0, 4)},
    "box centred at the origin (mask_gt quirk)": {
        "batch_idx": torch.tensor([0, 0, 1]), "cls": torch.tensor([0, 2, 1]),
        "bboxes": torch.tensor([[0.3, 0.3, 0.4, 0.35], [0.0, 0.0, 0.3, 0.2], [0.5, 0.5, 0.3, 0.6]])},
}


@pytest.mark.parametrize("case", DETECTION_CASES)
def test_detection_matches_ultralytics(case):
    batch = DETECTION_CASES[case]
    distri, logits = _predictions(1)
    ref, grads = _det(distri, logits, batch)
    assert not ref.assignment.tied_topk.any()
    ul_loss, ul_grads, _ = _ultralytics(distri, logits, batch)
    _assert_same(ref, grads, ul_loss, ul_grads)
    assert set(ref.items) == {"box_loss", "cls_loss", "dfl_loss"}
    torch.testing.assert_close(torch.stack(list(ref.items.values())) * 2, ref.loss.detach(), rtol=0, atol=0)
    assert not any(v.requires_grad for v in ref.items.values())


def _det(distri, logits, batch, **kwargs):
    return _reference_with_grads(lambda d, lg: yolov8_detection_loss(d, lg, SIZES, STRIDES, batch, **kwargs),
                                 distri, logits)


def test_target_smaller_than_a_stride_ties_and_the_reference_under_ultralytics_assignment():
    # A 3.84 x 6.4 px target: 8.4 tests a 16 px box, which holds 4 anchors; their CIoU with the tiny box is <= 0,
    # so their metric is 0 and ties with the out-of-box zeros: which of them ultralytics' torch.topk keeps is
    # unspecified. The reference flags the row, ultralytics' positives lie within the tie, and the reference loss
    # under ultralytics' own assignment equals ultralytics' loss (the tie-aware check of DESIGN §6).
    batch = {"batch_idx": torch.tensor([0, 1]), "cls": torch.tensor([1, 0]),
             "bboxes": torch.tensor([[0.45, 0.5, 0.06, 0.1], [0.3, 0.7, 0.4, 0.4]])}
    distri, logits = _predictions(1)
    ref = yolov8_detection_loss(distri, logits, SIZES, STRIDES, batch)
    assert ref.assignment.tied_topk.tolist() == [[True], [False]]
    ul_loss, ul_grads, (labels, boxes, scores, fg, gt_idx) = _ultralytics(distri, logits, batch)
    a = ref.assignment
    row = a.align_metric[0, 0]
    cut = torch.sort(row, descending=True).values[9]
    above = a.eligible[0, 0] & (row > cut)
    tied = a.eligible[0, 0] & (row == cut)
    assert (above <= fg[0]).all() and (fg[0] <= above | tied).all()
    assert torch.equal(fg[1], a.fg_mask[1])
    theirs = dataclasses.replace(a, target_labels=labels, target_bboxes=boxes, target_scores=scores, fg_mask=fg,
                                 target_gt_idx=gt_idx)
    under_theirs, grads = _det(distri, logits, batch, assignment=theirs)
    _assert_same(under_theirs, grads, ul_loss, ul_grads)


def test_batch_without_targets_has_zero_box_and_dfl_terms():
    batch = DETECTION_CASES["batch without targets"]
    distri, logits = _predictions(1)
    ref, (g_distri, g_logits) = _det(distri, logits, batch)
    # cls = sum BCE(x, 0) / max(0, 1) * 0.5, times B = 2
    want = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="sum") * 0.5 * 2
    assert ref.loss[0].item() == 0 and ref.loss[2].item() == 0
    assert ref.loss[1].item() == pytest.approx(want.item(), rel=1e-14)
    assert (g_distri == 0).all() and torch.isfinite(g_logits).all()


def test_mask_gt_quirk_drops_a_box_whose_pixel_corners_sum_to_zero():
    # cxcywh (0, 0, 0.3, 0.2) -> xyxy (-9.6, -6.4, 9.6, 6.4): sum 0 -> treated as padding.
    quirk = DETECTION_CASES["box centred at the origin (mask_gt quirk)"]
    without = {k: v[[0, 2]] for k, v in quirk.items()}
    distri, logits = _predictions(1)
    with_box = yolov8_detection_loss(distri, logits, SIZES, STRIDES, quirk)
    dropped = yolov8_detection_loss(distri, logits, SIZES, STRIDES, without)
    assert torch.equal(with_box.loss, dropped.loss)
    kept = yolov8_detection_loss(distri, logits, SIZES, STRIDES, quirk,
                                 config=dataclasses.replace(YOLOV8_ULTRALYTICS, drop_nonpositive_gts=False))
    assert not torch.equal(kept.loss, dropped.loss)


def test_target_larger_than_the_regressable_distance_is_clamped():
    # A 256 x 256 image (levels 32x32, 16x16, 8x8) and one GT covering almost all of it. Level-0 predictions
    # favour the last bin (15 cells = 120 px per side), so level-0 anchors near the centre are assigned, and
    # their distances to the sides (~124 px = 15.5 cells) exceed reg_max - 1 - 0.01 = 14.99.
    sizes = [(32, 32), (16, 16), (8, 8)]
    gen = torch.Generator().manual_seed(2)
    a = 32 * 32 + 16 * 16 + 64
    distri = torch.randn(1, a, 4 * R, generator=gen)
    distri.view(1, a, 4, R)[:, :1024, :, -1] += 8.0
    logits = torch.randn(1, a, 2, generator=gen)
    batch = {"batch_idx": torch.tensor([0]), "cls": torch.tensor([1]), "bboxes": torch.tensor([[0.5, 0.5, 0.98, 0.98]])}
    ref, grads = _reference_with_grads(lambda d, lg: yolov8_detection_loss(d, lg, sizes, STRIDES, batch),
                                       distri, logits)
    fg = ref.assignment.fg_mask[0]
    assert not ref.assignment.tied_topk.any()
    level0 = torch.nonzero(fg[:1024]).flatten()
    assert level0.numel() > 0
    points = torch.stack(((level0 % 32).double() + 0.5, (level0 // 32).double() + 0.5), -1)  # cells
    box = ref.assignment.target_bboxes[0, level0] / 8
    raw = torch.cat((points - box[:, :2], box[:, 2:] - points), -1)
    assert raw.max() > 14.99  # the DFL target is clamped there
    ul_loss, ul_grads, _ = _ultralytics(distri, logits, batch, sizes=sizes)
    _assert_same(ref, grads, ul_loss, ul_grads)


def test_targets_in_any_batch_order_are_grouped_stably():
    # ultralytics' preprocess needs batch_idx sorted; the reference groups per image in input order.
    distri, logits = _predictions(1)
    shuffled = {k: v[[2, 0, 1]] for k, v in BATCH.items()}  # image 1's target first; image 0's keep their order
    assert torch.equal(yolov8_detection_loss(distri, logits, SIZES, STRIDES, BATCH).loss,
                       yolov8_detection_loss(distri, logits, SIZES, STRIDES, shuffled).loss)


def test_hand_computed_loss_under_a_given_assignment():
    # One level of 2 x 2 cells, stride 8 (image 16 x 16), reg_max 4, all logits 0.
    # DFL expectation per side = 1.5 cells; anchor 0 at (0.5, 0.5) predicts [-1, -1, 2, 2] (cells).
    # Assignment: anchor 0 -> class 0 with score 1 and that very box (in pixels [-8, -8, 16, 16]).
    #   cls: every logit 0 -> BCE = ln 2 for all 4 x 2 entries, target-score sum 1 -> 8 ln 2, gain 0.5
    #   dfl: uniform bins -> -log(1/4) = 2 ln 2 per side, weight 1 -> 2 ln 2, gain 1.5
    #   box: CIoU of a box with itself under ultralytics' eps ~ 1 -> ~0, gain 7.5
    config = dataclasses.replace(YOLOV8_ULTRALYTICS, reg_max=4)
    distri, logits = torch.zeros(1, 4, 16), torch.zeros(1, 4, 2)
    fg = torch.tensor([[True, False, False, False]])
    scores = torch.zeros(1, 4, 2)
    scores[0, 0, 0] = 1.0
    boxes = torch.tensor([[[-8.0, -8.0, 16.0, 16.0]] * 4])
    given = TaskAlignedAssignment(target_labels=torch.zeros(1, 4, dtype=torch.int64), target_bboxes=boxes,
                                  target_scores=scores, fg_mask=fg, target_gt_idx=torch.zeros(1, 4, dtype=torch.int64),
                                  align_metric=torch.zeros(1, 1, 4), overlaps=torch.zeros(1, 1, 4),
                                  eligible=fg[:, None], mask_pos=fg[:, None],
                                  tied_topk=torch.zeros(1, 1, dtype=torch.bool))
    batch = {"batch_idx": torch.tensor([0]), "cls": torch.tensor([0]), "bboxes": torch.tensor([[0.25, 0.25, 0.5, 0.5]])}
    r = yolov8_detection_loss(distri, logits, [(2, 2)], [8.0], batch, config=config, assignment=given)
    assert r.loss[1].item() == pytest.approx(0.5 * 8 * math.log(2), rel=1e-14)
    assert r.loss[2].item() == pytest.approx(1.5 * 2 * math.log(2), rel=1e-14)
    assert r.loss[0].item() == pytest.approx(0.0, abs=1e-6)
    assert torch.equal(r.assignment.fg_mask, fg)
    # The same assignment in float32 (as a candidate might give it) is read in float64: the same loss.
    as32 = dataclasses.replace(given, target_bboxes=boxes.float(), target_scores=scores.float())
    r32 = yolov8_detection_loss(distri, logits, [(2, 2)], [8.0], batch, config=config, assignment=as32)
    assert torch.equal(r32.loss, r.loss) and r32.assignment.target_scores.dtype == torch.float64


def test_zero_area_predicted_boxes_have_finite_forward_and_backward():
    distri, logits = _predictions(1)
    bins = distri.view(2, A, 4, R)
    bins[..., 0, 0] = 1e4  # saturated: l = r = 0 exactly -> every predicted box has zero width
    bins[..., 2, 0] = 1e4
    ref, grads = _det(distri, logits, BATCH)
    assert ref.assignment.fg_mask.any()
    assert torch.isfinite(ref.loss).all() and all(torch.isfinite(g).all() for g in grads)


def test_detection_bad_input():
    distri, logits = _predictions(1)
    bad = {
        "batch_idx": ({**BATCH, "batch_idx": torch.tensor([0, 0, 2])}, r"batch\['batch_idx'\]: expected values <= 1"),
        "float batch_idx": ({**BATCH, "batch_idx": torch.tensor([0.0, 0, 1])}, "expected an integer dtype"),
        "cls": ({**BATCH, "cls": torch.tensor([0, 3, 1])}, r"batch\['cls'\]: expected labels in \[0, 3\)"),
        "bboxes": ({**BATCH, "bboxes": torch.tensor([[0.3, 0.3, -0.4, 0.35]] * 3)}, "non-negative width"),
        "nan": ({**BATCH, "bboxes": torch.full((3, 4), math.nan)}, "expected finite values"),
        "keys": ({"cls": BATCH["cls"]}, "batch: expected a 'batch_idx' entry"),
    }
    for name, (batch, match) in bad.items():
        with pytest.raises(OracleInputError, match=match):
            yolov8_detection_loss(distri, logits, SIZES, STRIDES, batch)
    with pytest.raises(OracleInputError, match=r"pred_distri: expected shape \(2, 84, 64\)"):
        yolov8_detection_loss(distri[..., :60], logits, SIZES, STRIDES, BATCH)
    with pytest.raises(OracleInputError, match="pred_logits: expected shape"):
        yolov8_detection_loss(distri, logits[:, :80], SIZES, STRIDES, BATCH)
    nan_logits = logits.clone()
    nan_logits[0, 3, 1] = math.nan
    with pytest.raises(OracleInputError, match="pred_logits: expected finite values"):
        yolov8_detection_loss(distri, nan_logits, SIZES, STRIDES, BATCH)
    with pytest.raises(OracleInputError, match="featmap_sizes"):
        yolov8_detection_loss(distri, logits, SIZES[:2], STRIDES, BATCH)
    with pytest.raises(OracleInputError, match="YOLOv8LossConfig.reg_max"):
        dataclasses.replace(YOLOV8_ULTRALYTICS, reg_max=1)


# --------------------------------------------------------------------------- segmentation vs ultralytics

SEG_CASES = {
    "overlap, masks at proto size": (BATCH, True, (16, 16)),
    "overlap, masks 4x larger (proto upsampled)": (BATCH, True, (64, 64)),
    "per-target masks, 2x larger": (BATCH, False, (32, 32)),
    "one image without targets": ({k: v[:2] for k, v in BATCH.items()}, True, (32, 32)),
    "batch without targets": (DETECTION_CASES["batch without targets"], False, (16, 16)),
}


@pytest.mark.parametrize("case", SEG_CASES)
def test_segmentation_matches_ultralytics(case):
    batch, overlap, mask_size = SEG_CASES[case]
    batch = {**batch, "masks": _masks_for(batch, mask_size, overlap=overlap)}
    distri, logits, coef, proto = _predictions(1, nm=4)
    config = dataclasses.replace(YOLOV8_ULTRALYTICS, overlap_mask=overlap)
    ref, grads = _reference_with_grads(
        lambda *t: yolov8_segmentation_loss(*t, SIZES, STRIDES, batch, config=config), distri, logits, coef, proto)
    assert not ref.assignment.tied_topk.any()
    assert ref.names == ("box_loss", "seg_loss", "cls_loss", "dfl_loss")
    ul_loss, ul_grads, _ = _ultralytics(distri, logits, batch, coef=coef, proto=proto, overlap=overlap)
    _assert_same(ref, grads, ul_loss, ul_grads)
    # Unpatched, ultralytics computes the mask BCE in float32: only the seg term moves, by float32 rounding.
    plain, _, _ = _ultralytics(distri, logits, batch, coef=coef, proto=proto, overlap=overlap, float64_masks=False)
    torch.testing.assert_close(ref.loss.detach(), plain, rtol=1e-6, atol=1e-9)
    if not batch["batch_idx"].numel():
        assert ref.loss[1].item() == 0 and (grads[2] == 0).all() and (grads[3] == 0).all()


@pytest.mark.parametrize("overlap", [True, False])
def test_mask_loss_by_blocks_is_bit_identical_to_one_block(monkeypatch, overlap):
    # The mask loss runs per block of _MASK_BLOCK foreground anchors, each recomputed in the backward pass:
    # blocks of one anchor must give the bits of a single block, gradients included, and pick
    # each block's own target masks (a block given another block's rows changes the loss).
    import oracle.criteria.yolov8 as Y
    batch = {**BATCH, "masks": _masks_for(BATCH, (16, 16), overlap=overlap)}
    config = dataclasses.replace(YOLOV8_ULTRALYTICS, overlap_mask=overlap)

    def run(block):
        monkeypatch.setattr(Y, "_MASK_BLOCK", block)
        return _reference_with_grads(lambda *t: yolov8_segmentation_loss(*t, SIZES, STRIDES, batch, config=config),
                                     *_predictions(1, nm=4))
    (one, one_grads), (many, many_grads) = run(1 << 30), run(1)
    assert int(one.assignment.fg_mask.sum()) > 2 and one.loss[1] > 0
    assert torch.equal(one.loss, many.loss)
    assert all(torch.equal(g, h) for g, h in zip(one_grads, many_grads))


def test_overlap_and_per_target_masks_give_the_same_loss():
    # Disjoint per-target masks and the index maps made from them hold the same pixels: the same loss.
    distri, logits, coef, proto = _predictions(1, nm=4)
    per_target = _masks_for(BATCH, (16, 16), overlap=False)
    per_target[1] *= 1 - per_target[0]  # targets 0 and 1 (image 0) overlap: make them disjoint
    maps = torch.zeros(2, 16, 16)
    maps[0] = per_target[0] + 2 * per_target[1]
    maps[1] = per_target[2]
    off = yolov8_segmentation_loss(distri, logits, coef, proto, SIZES, STRIDES, {**BATCH, "masks": per_target},
                                   config=dataclasses.replace(YOLOV8_ULTRALYTICS, overlap_mask=False))
    on = yolov8_segmentation_loss(distri, logits, coef, proto, SIZES, STRIDES, {**BATCH, "masks": maps})
    assert per_target.sum() > 0 and (per_target[0] * per_target[1]).sum() == 0
    torch.testing.assert_close(on.loss, off.loss, rtol=1e-14, atol=0)


def test_legacy_downsamples_the_masks_nearest():
    # Reference legacy with 64 x 64 index maps == ultralytics 8.4 fed the nearest-downsampled 16 x 16 maps
    # (equal sizes: no resizing on its side). The assignment is the same (both GTs exceed the stride).
    distri, logits, coef, proto = _predictions(1, nm=4)
    big = _masks_for(BATCH, (64, 64))
    config = dataclasses.replace(YOLOV8_ULTRALYTICS, mask_resize="downsample_masks")
    legacy = yolov8_segmentation_loss(distri, logits, coef, proto, SIZES, STRIDES, {**BATCH, "masks": big},
                                      config=config)
    ul_loss, _, _ = _ultralytics(distri, logits, {**BATCH, "masks": downsample_masks(big, (16, 16))}, coef=coef,
                                 proto=proto)
    torch.testing.assert_close(legacy.loss.detach(), ul_loss, rtol=1e-11, atol=1e-12)
    upsampled = yolov8_segmentation_loss(distri, logits, coef, proto, SIZES, STRIDES, {**BATCH, "masks": big})
    assert not torch.isclose(upsampled.loss[1], legacy.loss[1])
    assert YOLOV8_ULTRALYTICS_LEGACY.mask_resize == "downsample_masks"
    assert not YOLOV8_ULTRALYTICS_LEGACY.assigner.enlarge_small_gts


def test_segmentation_refuses_an_assigned_box_of_zero_area():
    # A zero-width target: ultralytics divides its cropped loss (0) by its area (0). Give the assignment so that
    # the zero-area box is certainly foreground.
    batch = {"batch_idx": torch.tensor([0]), "cls": torch.tensor([0]), "bboxes": torch.tensor([[0.5, 0.5, 0.0, 0.3]])}
    distri, logits, coef, proto = _predictions(1, b=1, nm=4)
    r = yolov8_detection_loss(distri, logits, SIZES, STRIDES, batch)
    fg = torch.zeros(1, A, dtype=torch.bool)
    fg[0, 0] = True
    given = dataclasses.replace(r.assignment, fg_mask=fg)
    with pytest.raises(OracleInputError, match="a box of positive area for every assigned target"):
        yolov8_segmentation_loss(distri, logits, coef, proto, SIZES, STRIDES,
                                 {**batch, "masks": torch.zeros(1, 16, 16)}, assignment=given)


def test_a_given_assignment_is_validated():
    distri, logits = _predictions(1)
    a = yolov8_detection_loss(distri, logits, SIZES, STRIDES, BATCH).assignment
    bad = {"fg_mask": (a.fg_mask[:, :80], r"assignment.fg_mask: expected shape \(2, 84\)"),
           "target_scores": (a.target_scores + 1, "assignment.target_scores: expected values <= 1.0"),
           "target_gt_idx": (a.target_gt_idx + 2, "assignment.target_gt_idx: expected values <= 1"),
           "target_bboxes": (a.target_bboxes.flip(-1), "assignment.target_bboxes: expected x2 >= x1")}
    for name, (value, match) in bad.items():
        with pytest.raises(OracleInputError, match=match):
            yolov8_detection_loss(distri, logits, SIZES, STRIDES, BATCH,
                                  assignment=dataclasses.replace(a, **{name: value}))
    with pytest.raises(OracleInputError, match="assignment: expected a TaskAlignedAssignment"):
        yolov8_detection_loss(distri, logits, SIZES, STRIDES, BATCH, assignment={"fg_mask": a.fg_mask})


def test_segmentation_bad_input():
    distri, logits, coef, proto = _predictions(1, nm=4)
    masks = _masks_for(BATCH, (16, 16))
    cases = [
        ({**BATCH}, "batch: expected a 'masks' entry", coef, proto),
        ({**BATCH, "masks": masks + 0.5}, "integers in", coef, proto),
        ({**BATCH, "masks": masks + 2}, "integers in", coef, proto),
        ({**BATCH, "masks": masks[:1]}, "index maps", coef, proto),
        ({**BATCH, "masks": masks}, r"proto: expected shape \(2, 4", coef, proto[:, :3]),
        ({**BATCH, "masks": masks}, "mask_coefficients: expected shape", coef[:, :50], proto),
        ({**BATCH, "masks": masks}, "proto: expected finite values", coef, proto * math.inf),
    ]
    for batch, match, c, p in cases:
        with pytest.raises(OracleInputError, match=match):
            yolov8_segmentation_loss(distri, logits, c, p, SIZES, STRIDES, batch)
    per_target = dataclasses.replace(YOLOV8_ULTRALYTICS, overlap_mask=False)
    with pytest.raises(OracleInputError, match="3 masks"):
        yolov8_segmentation_loss(distri, logits, coef, proto, SIZES, STRIDES, {**BATCH, "masks": masks},
                                 config=per_target)
