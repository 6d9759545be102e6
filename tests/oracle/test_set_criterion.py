"""oracle.criteria.set_criterion: hand-computed terms, normalisations, keys, invariances and edge cases."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance import strategies as S
from oracle import OracleInputError
from oracle import losses as L
from oracle.conventions import SetCriterionConvention, get_profile
from oracle.criteria import SetCriterion, SetCriterionConfig, num_boxes
from oracle.criteria._inputs import targets_arg

from ..conftest import import_or_skip


def _lse(xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def _focal(x, t, alpha=0.25, gamma=2.0):
    p = 1 / (1 + math.exp(-x))
    ce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
    p_t = p * t + (1 - p) * (1 - t)
    return (alpha * t + (1 - alpha) * (1 - t)) * (1 - p_t) ** gamma * ce


# Two queries, one target of class 1 out of C = 2, matched to query 0 (given).
LOGITS_SOFTMAX = [[0.5, 2.0, -1.0], [1.0, 0.0, 3.0]]        # K = C + 1, no-object last
LOGITS_FOCAL = [[0.5, 2.0], [1.0, -0.5]]                    # K = C
PRED = [[0.5, 0.5, 0.2, 0.4], [0.3, 0.7, 0.1, 0.1]]
GT = [[0.55, 0.45, 0.3, 0.4]]
INDICES = {"": [(torch.tensor([0]), torch.tensor([0]))]}


def _outputs(logits):
    return {"pred_logits": torch.tensor([logits]), "pred_boxes": torch.tensor([PRED])}


def _targets():
    return [{"labels": torch.tensor([1]), "boxes": torch.tensor(GT)}]


def _box_terms():
    # L1 |0.5-0.55| + |0.5-0.45| + |0.2-0.3| + |0.4-0.4| = 0.2.
    # pred xyxy [0.4, 0.3, 0.6, 0.7] (area 0.08), gt xyxy [0.4, 0.25, 0.7, 0.65] (area 0.12):
    # inter 0.2 x 0.35 = 0.07, union 0.13, enclosing 0.3 x 0.45 = 0.135.
    giou = 0.07 / 0.13 - (0.135 - 0.13) / 0.135
    return 0.2, 1 - giou


def test_detr_softmax_terms_by_hand():
    crit = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=2))
    out = crit(_outputs(LOGITS_SOFTMAX), _targets(), indices=INDICES)
    ce0 = _lse(LOGITS_SOFTMAX[0]) - LOGITS_SOFTMAX[0][1]   # query 0 -> class 1, weight 1
    ce1 = _lse(LOGITS_SOFTMAX[1]) - LOGITS_SOFTMAX[1][2]   # query 1 -> no-object, weight 0.1
    assert out["loss_ce"].item() == pytest.approx((ce0 + 0.1 * ce1) / 1.1, rel=1e-14)
    assert out["class_error"].item() == 0.0                  # argmax of query 0 is class 1
    # argmax: query 0 -> 1 (object), query 1 -> 2 (no-object): one predicted object, one target.
    assert out["cardinality_error"].item() == 0.0
    l1, giou_loss = _box_terms()
    assert out["loss_bbox"].item() == pytest.approx(l1, rel=1e-13)
    assert out["loss_giou"].item() == pytest.approx(giou_loss, rel=1e-13)
    assert set(out) == {"loss_ce", "class_error", "cardinality_error", "loss_bbox", "loss_giou"}
    assert crit.total(out).item() == pytest.approx(out["loss_ce"].item() + 5 * l1 + 2 * giou_loss, rel=1e-13)


def test_deformable_focal_terms_by_hand():
    crit = SetCriterion(SetCriterionConfig.from_profile("deformable_detr", num_classes=2))
    out = crit(_outputs(LOGITS_FOCAL), _targets(), indices=INDICES)
    # one-hot: query 0 -> [0, 1]; query 1 -> [0, 0]; sum over all 4 elements / num_boxes (1).
    want = (_focal(0.5, 0) + _focal(2.0, 1) + _focal(1.0, 0) + _focal(-0.5, 0)) / 1.0
    assert out["loss_ce"].item() == pytest.approx(want, rel=1e-14)
    assert out["class_error"].item() == 0.0
    # argmax_not_last: query 0 argmax 1 = last column -> not counted; query 1 argmax 0 -> counted.
    assert out["cardinality_error"].item() == 0.0
    l1, giou_loss = _box_terms()
    assert out["loss_bbox"].item() == pytest.approx(l1, rel=1e-13)
    assert crit.total(out).item() == pytest.approx(2 * want + 5 * l1 + 2 * giou_loss, rel=1e-13)


def test_cardinality_conventions_differ_as_upstream():
    # Both queries have a max logit > 0, so transformers counts 2 objects (error 1); DETR's rule counts
    # only query 1 (query 0's argmax is the last class) -> error 0.
    hf = SetCriterion(SetCriterionConfig.from_profile("hf_deformable_detr", num_classes=2))
    out = hf(_outputs(LOGITS_FOCAL), _targets(), indices=INDICES)
    assert out["cardinality_error"].item() == 1.0
    assert "class_error" not in out


def test_tie_dependent_metrics_by_hand():
    # Query 0 (matched to class 1) ties classes 1 and 2 (no-object) at 2.0; query 1 ties classes 0 and 2 at 3.0.
    # class_error: first max (argmax) -> class 1, right (0); favourable 0; unfavourable: a tie is not a hit (100).
    # cardinality_error, one target: query 0 is an object or not, query 1 too -> the count is 0, 1 or 2; argmax
    # (first maximum) counts both (error 1), favourable counts one (0), unfavourable none or two (1).
    logits = [[0.5, 2.0, 2.0], [3.0, 0.0, 3.0]]
    got = {}
    for ties in ("first", "favourable", "unfavourable"):
        crit = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=2, metric_ties=ties))
        out = crit(_outputs(logits), _targets(), indices=INDICES)
        got[ties] = (out["class_error"].item(), out["cardinality_error"].item())
    assert got == {"first": (0.0, 1.0), "favourable": (0.0, 0.0), "unfavourable": (100.0, 1.0)}
    # Without a tie the three agree.
    for ties in ("favourable", "unfavourable"):
        crit = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=2, metric_ties=ties))
        out = crit(_outputs(LOGITS_SOFTMAX), _targets(), indices=INDICES)
        assert (out["class_error"].item(), out["cardinality_error"].item()) == (0.0, 0.0)
    with pytest.raises(OracleInputError, match="metric_ties"):
        SetCriterionConfig.from_profile("detr", num_classes=2, metric_ties="last")


def test_dino_box_diagnostics_and_giou_eps():
    crit = SetCriterion(SetCriterionConfig.from_profile("dino", num_classes=2))
    out = crit(_outputs(LOGITS_FOCAL), _targets(), indices=INDICES)
    assert out["loss_xy"].item() == pytest.approx(0.1, rel=1e-13)   # |0.5-0.55| + |0.5-0.45|
    assert out["loss_hw"].item() == pytest.approx(0.1, rel=1e-13)   # |0.2-0.3| + |0.4-0.4|
    giou = 0.07 / (0.13 + 1e-6) - (0.135 - 0.13) / (0.135 + 1e-6)  # DINO box_ops: additive 1e-6
    assert out["loss_giou"].item() == pytest.approx(1 - giou, rel=1e-13)
    assert crit.weight_of("loss_xy") == 0.0 and crit.weight_of("loss_hw_dn_0") == 0.0


def test_masks_by_hand():
    crit = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=2))
    pred_masks = torch.tensor([[[[0.0, 2.0], [-1.0, 1.0]], [[5.0, 5.0], [5.0, 5.0]]]])   # [1, 2, 2, 2]
    tgt_mask = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])                                  # [1, 2, 2]
    out = crit({**_outputs(LOGITS_SOFTMAX), "pred_masks": pred_masks},
               [{**_targets()[0], "masks": tgt_mask}], indices=INDICES)
    xs, ts = [0.0, 2.0, -1.0, 1.0], [0.0, 1.0, 0.0, 1.0]
    # Same size: bilinear resize with align_corners=False is the identity.
    assert out["loss_mask"].item() == pytest.approx(sum(_focal(x, t) for x, t in zip(xs, ts)) / 4, rel=1e-13)
    p = [1 / (1 + math.exp(-x)) for x in xs]
    dice = 1 - (2 * sum(a * b for a, b in zip(p, ts)) + 1) / (sum(p) + sum(ts) + 1)
    assert out["loss_dice"].item() == pytest.approx(dice, rel=1e-13)


def test_masks_are_resized_to_the_padded_target_size():
    crit = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=2))
    pred_masks = torch.zeros(2, 1, 3, 3)
    box = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    targets = [{"labels": torch.tensor([0]), "boxes": box, "masks": torch.ones(1, 4, 6)},
               {"labels": torch.tensor([1]), "boxes": box, "masks": torch.ones(1, 5, 2)}]
    out = crit({"pred_logits": torch.zeros(2, 1, 3), "pred_boxes": torch.full((2, 1, 4), 0.3),
                "pred_masks": pred_masks}, targets)
    # padded size 5 x 6: image 0 has 24 ones of 30 pixels, image 1 has 10; logits 0 everywhere.
    f1, f0 = _focal(0.0, 1), _focal(0.0, 0)
    want = ((24 * f1 + 6 * f0) / 30 + (10 * f1 + 20 * f0) / 30) / 2
    assert out["loss_mask"].item() == pytest.approx(want, rel=1e-13)


# --------------------------------------------------------------------------- normalisation

def test_num_boxes_world_and_local():
    t = targets_arg([{"labels": torch.tensor([0, 1]), "boxes": torch.full((2, 4), 0.2)},
                     {"labels": torch.tensor([1]), "boxes": torch.full((1, 4), 0.2)}], 2, 2)
    assert num_boxes(t) == 3.0
    assert num_boxes(t, world_num_boxes=[3, 5, 0, 0]) == 2.0
    assert num_boxes(t, world_num_boxes=[3, 0, 0, 0, 0]) == 1.0        # 0.6 clamps to 1
    assert num_boxes(t, world_num_boxes=[3, 5], mode="local") == 3.0
    empty = targets_arg([{"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}], 1, 2)
    assert num_boxes(empty) == 1.0


def test_world_num_boxes_scales_box_losses():
    crit = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=2))
    one = crit(_outputs(LOGITS_SOFTMAX), _targets(), indices=INDICES)
    four = crit(_outputs(LOGITS_SOFTMAX), _targets(), indices=INDICES, world_num_boxes=[1, 7])
    assert four["loss_bbox"].item() == pytest.approx(one["loss_bbox"].item() / 4, rel=1e-14)
    assert four["loss_ce"].item() == one["loss_ce"].item()  # softmax CE is a weighted mean, not / num_boxes
    local = SetCriterion(SetCriterionConfig(2, SetCriterionConvention(num_boxes="local"), get_profile("detr").matcher))
    assert local(_outputs(LOGITS_SOFTMAX), _targets(), indices=INDICES,
                 world_num_boxes=[1, 7])["loss_bbox"].item() == one["loss_bbox"].item()


def test_focal_is_normalised_by_target_count_not_matched_count():
    # 3 targets, 2 queries: num_boxes = 3 (DETR family) although only 2 queries are matched.
    crit = SetCriterion(SetCriterionConfig.from_profile("dino", num_classes=2))
    logits = torch.tensor([[[0.3, -0.2], [1.0, 0.5]]])
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.4, 0.4, 0.2, 0.2]]])
    targets = [{"labels": torch.tensor([0, 1, 1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.4, 0.4, 0.2, 0.2],
                                                                          [0.6, 0.6, 0.1, 0.1]])}]
    out = crit({"pred_logits": logits, "pred_boxes": boxes}, targets,
               indices={"": [(torch.tensor([0, 1]), torch.tensor([0, 1]))]})
    want = (_focal(0.3, 1) + _focal(-0.2, 0) + _focal(1.0, 0) + _focal(0.5, 1)) / 3
    assert out["loss_ce"].item() == pytest.approx(want, rel=1e-14)
    assert out["loss_bbox"].item() == pytest.approx(0.0, abs=1e-15)


# --------------------------------------------------------------------------- keys and layers

def _random_layer(k, b=2, q=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"pred_logits": torch.randn(b, q, k, generator=g),
            "pred_boxes": torch.rand(b, q, 4, generator=g) * 0.4 + 0.1}


def _random_targets(c):
    return [{"labels": torch.tensor([0, c - 1]), "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.3, 0.2]])},
            {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])}]


def test_keys_detr_with_aux():
    crit = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=3))
    out = crit({**_random_layer(4), "aux_outputs": [_random_layer(4, seed=1), _random_layer(4, seed=2)]},
               _random_targets(3))
    base = {"loss_ce", "loss_bbox", "loss_giou", "cardinality_error"}
    assert set(out) == base | {"class_error"} | {f"{k}_{i}" for k in base for i in (0, 1)}
    w = crit.weighted(out)
    assert set(w) == {f"{k}{s}" for k in ("loss_ce", "loss_bbox", "loss_giou") for s in ("", "_0", "_1")}


def test_keys_deformable_two_stage_uses_class_agnostic_targets():
    crit = SetCriterion(SetCriterionConfig.from_profile("deformable_detr", num_classes=3))
    enc = _random_layer(3, q=6, seed=3)
    out = crit({**_random_layer(3), "enc_outputs": enc}, _random_targets(3))
    assert {"loss_ce_enc", "loss_bbox_enc", "loss_giou_enc", "cardinality_error_enc"} <= set(out)
    assert "class_error_enc" not in out
    # The enc loss equals the loss of the encoder layer against all-zero labels.
    binary = [{**t, "labels": torch.zeros_like(t["labels"])} for t in _random_targets(3)]
    direct = crit(enc, binary)
    for k in ("loss_ce", "loss_bbox", "loss_giou"):
        assert out[f"{k}_enc"].item() == pytest.approx(direct[k].item(), rel=1e-14)


def test_dino_interm_weights_use_interm_coef():
    conv = SetCriterionConvention(classification="focal", interm_coef=0.5, weight_bbox=5.0)
    crit = SetCriterion(SetCriterionConfig(3, conv, get_profile("dino").matcher))
    out = crit({**_random_layer(3), "interm_outputs": _random_layer(3, seed=4)}, _random_targets(3))
    assert crit.weight_of("loss_bbox_interm") == 2.5
    assert crit.weighted(out)["loss_bbox_interm"].item() == pytest.approx(2.5 * out["loss_bbox_interm"].item())


# --------------------------------------------------------------------------- invariances

@given(st.sampled_from(["detr", "deformable_detr", "dino"]), st.permutations(range(3)), st.permutations(range(4)))
def test_invariant_to_permuting_targets_and_queries(profile, tperm, qperm):
    c = 3
    crit = SetCriterion(SetCriterionConfig.from_profile(profile, num_classes=c))
    k = crit.config.num_logits
    layer = _random_layer(k, b=1, q=4, seed=7)
    targets = [{"labels": torch.tensor([0, 2, 1]),
                "boxes": torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.3, 0.2], [0.5, 0.5, 0.4, 0.4]])}]
    base = crit(layer, targets)
    tp, qp = torch.tensor(tperm), torch.tensor(qperm)
    shuffled_t = [{"labels": targets[0]["labels"][tp], "boxes": targets[0]["boxes"][tp]}]
    shuffled_q = {"pred_logits": layer["pred_logits"][:, qp], "pred_boxes": layer["pred_boxes"][:, qp]}
    for out in (crit(layer, shuffled_t), crit(shuffled_q, targets), crit(shuffled_q, shuffled_t)):
        for key in ("loss_ce", "loss_bbox", "loss_giou", "cardinality_error", "class_error"):
            assert out[key].item() == pytest.approx(base[key].item(), rel=1e-12, abs=1e-12), key


@given(S.matching_batch(max_queries=4, max_targets=4), st.booleans())
def test_criterion_equals_its_terms_from_the_primitives(batch, softmax):
    from oracle import boxes as box_ops
    from oracle import losses as L
    from oracle.assign.hungarian import hungarian_match
    logits, pred, targets, _ = batch
    c = 4
    profile = "detr" if softmax else "deformable_detr"
    if not softmax:
        logits = logits[..., :-1]
    cfg = SetCriterionConfig.from_profile(profile, num_classes=c)
    out = SetCriterion(cfg)({"pred_logits": logits, "pred_boxes": pred}, targets)
    matches = hungarian_match(logits, pred, targets, convention=cfg.matcher)
    n = max(float(sum(len(t["labels"]) for t in targets)), 1.0)
    classes = torch.full(logits.shape[:2], c)
    src, tgt = [], []
    for b, (m, t) in enumerate(zip(matches, targets)):
        classes[b, m.pred_idx] = t["labels"][m.gt_idx]
        src.append(pred[b, m.pred_idx])
        tgt.append(t["boxes"][m.gt_idx])
    src, tgt = torch.cat(src), torch.cat(tgt)
    if softmax:
        w = torch.ones(c + 1)
        w[-1] = 0.1
        want_ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), classes, weight=w)
    else:
        onehot = torch.nn.functional.one_hot(classes, c + 1)[..., :c].double()
        want_ce = L.sigmoid_focal_loss(logits, onehot, reduction="sum") / n
    assert out["loss_ce"].item() == pytest.approx(want_ce.item(), rel=1e-12)
    assert out["loss_bbox"].item() == pytest.approx((src - tgt).abs().sum().item() / n, rel=1e-12, abs=1e-15)
    g = box_ops.giou(box_ops.convert(src, "cxcywh", "xyxy"), box_ops.convert(tgt, "cxcywh", "xyxy"), aligned=True)
    assert out["loss_giou"].item() == pytest.approx((1 - g).sum().item() / n, rel=1e-12, abs=1e-15)


# --------------------------------------------------------------------------- edge cases

@pytest.mark.parametrize("profile", ["detr", "hf_detr", "deformable_detr", "hf_deformable_detr", "dino"])
def test_zero_targets_alone_and_mixed(profile):
    crit = SetCriterion(SetCriterionConfig.from_profile(profile, num_classes=3))
    k = crit.config.num_logits
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}
    layer = _random_layer(k, b=2)
    layer["pred_logits"].requires_grad_(True)
    layer["pred_boxes"].requires_grad_(True)
    alone = crit(layer, [empty, empty])
    assert alone["loss_bbox"].item() == 0.0 and alone["loss_giou"].item() == 0.0
    if "class_error" in alone:
        assert alone["class_error"].item() == 100.0
    total = crit.total(alone)
    (g,) = torch.autograd.grad(total, layer["pred_logits"])
    assert bool(torch.isfinite(total)) and bool(torch.isfinite(g).all())
    mixed = crit(layer, [empty, _random_targets(3)[1]])
    assert bool(torch.isfinite(crit.total(mixed)))


def test_all_background_softmax_is_a_plain_mean():
    # With every query on the no-object class, eos_coef cancels (api survey §2.2).
    crit = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=3))
    layer = _random_layer(4, b=2)
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}
    out = crit(layer, [empty, empty])
    want = torch.nn.functional.cross_entropy(layer["pred_logits"].reshape(-1, 4), torch.full((8,), 3))
    assert out["loss_ce"].item() == pytest.approx(want.item(), rel=1e-14)


def test_more_targets_than_queries_and_single_query():
    crit = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=3))
    layer = _random_layer(4, b=2, q=1)
    out = crit(layer, _random_targets(3))
    assert out["loss_bbox"].item() > 0 and bool(torch.isfinite(crit.total(out)))


def test_saturated_logits_and_tiny_boxes_stay_finite():
    for profile in ("detr", "dino"):
        crit = SetCriterion(SetCriterionConfig.from_profile(profile, num_classes=3))
        k = crit.config.num_logits
        logits = torch.tensor([[[30.0, -30.0, 30.0, -30.0][:k], [-30.0] * k, [30.0] * k]], requires_grad=True)
        boxes = torch.tensor([[[0.5, 0.5, 1e-9, 1e-9], [0.2, 0.2, 1e-12, 0.3], [0.7, 0.7, 0.2, 0.2]]],
                             requires_grad=True)
        out = crit({"pred_logits": logits, "pred_boxes": boxes}, [_random_targets(3)[0]])
        total = crit.total(out)
        grads = torch.autograd.grad(total, (logits, boxes))
        assert bool(torch.isfinite(total)) and all(bool(torch.isfinite(g).all()) for g in grads)


def test_bad_targets_are_refused():
    crit = SetCriterion(SetCriterionConfig.from_profile("detr", num_classes=3))
    layer = _random_layer(4, b=2)
    with pytest.raises(OracleInputError, match=r"targets: expected 2 per-image mappings"):
        crit(layer, _random_targets(3)[:1])
    bad_label = [_random_targets(3)[0], {"labels": torch.tensor([3]), "boxes": torch.full((1, 4), 0.2)}]
    with pytest.raises(OracleInputError, match=r"targets\[1\]\['labels'\]: expected labels in \[0, 3\), got 3"):
        crit(layer, bad_label)
    bad_format = [_random_targets(3)[0], {"labels": torch.tensor([1]), "boxes": torch.tensor([[0.6, 0.6, 0.2, -0.1]])}]
    with pytest.raises(OracleInputError, match=r"targets\[1\]\['boxes'\]: expected non-negative width and height"):
        crit(layer, bad_format)
    wrong_rank = [_random_targets(3)[0], {"labels": torch.tensor([1]), "boxes": torch.tensor([0.6, 0.6, 0.2, 0.1])}]
    with pytest.raises(OracleInputError, match=r"targets\[1\]\['boxes'\]: expected rank 2"):
        crit(layer, wrong_rank)
    with pytest.raises(OracleInputError, match=r"outputs\['pred_logits'\]: expected K = 4 logits per query"):
        crit(_random_layer(3), _random_targets(3))
    with pytest.raises(OracleInputError, match=r"indices\[''\]\[0\] pred_idx: expected distinct indices"):
        crit(layer, _random_targets(3), indices={"": [(torch.tensor([0, 0]), torch.tensor([0, 1])),
                                                      (torch.tensor([1]), torch.tensor([0]))]})


# --------------------------------------------------------------------------- ultralytics RT-DETR (profile ultralytics)

UL_INSTALL = "pip install ultralytics==8.4.190"
UL_KEYS = {f"loss_{k}{s}" for k in ("class", "bbox", "giou") for s in ("", "_aux")}
UL_DN_KEYS = UL_KEYS | {f"{k}_dn" for k in UL_KEYS}


def _sigmoid(x):
    return 1 / (1 + math.exp(-x))


def _vfl(x, q, label, alpha=0.25, gamma=1.5):
    # ultralytics VarifocalLoss element: BCE(x, q) * (alpha sigmoid(x)^gamma (1 - label) + q label).
    bce = -(q * math.log(_sigmoid(x)) + (1 - q) * math.log(1 - _sigmoid(x)))
    return bce * (alpha * _sigmoid(x) ** gamma * (1 - label) + q * label)


def _ul_crit(c, **changes):
    p = get_profile("ultralytics")
    return SetCriterion(SetCriterionConfig(c, dataclasses.replace(p.criterion, **changes), p.matcher))


def test_ultralytics_varifocal_terms_by_hand():
    crit = _ul_crit(2)
    out = crit(_outputs(LOGITS_FOCAL), _targets(), indices=INDICES)
    assert set(out) == UL_KEYS
    # bbox_iou(xywh=True): pred and gt boxes of _box_terms, eps 1e-7 added to the union and the enclosing area.
    iou = 0.07 / (0.13 + 1e-7)
    giou = iou - (0.135 - 0.13) / (0.135 + 1e-7)
    # query 0 is matched to class 1 (target iou), the other three elements are negatives; one matched pair.
    want = _vfl(0.5, 0, 0) + _vfl(2.0, iou, 1) + _vfl(1.0, 0, 0) + _vfl(-0.5, 0, 0)
    assert out["loss_class"].item() == pytest.approx(want, rel=1e-14)
    assert out["loss_bbox"].item() == pytest.approx(5 * 0.2, rel=1e-13)              # gain 5, L1 0.2, / 1
    assert out["loss_giou"].item() == pytest.approx(2 * (1 - giou), rel=1e-13)        # gain 2
    for k in ("loss_class_aux", "loss_bbox_aux", "loss_giou_aux"):                    # no other layer: 0
        assert out[k].item() == 0.0
    assert crit.total(out).item() == pytest.approx(want + 1.0 + 2 * (1 - giou), rel=1e-13)
    assert crit.weight_of("loss_giou_aux_dn") == 1.0


def test_ultralytics_positive_weight_is_its_iou_target():
    # A matched query whose box does not overlap its target has target 0 and weight 0 at its class.
    crit = _ul_crit(2)
    far = {"pred_logits": torch.tensor([[[0.3, 1.2]]]), "pred_boxes": torch.tensor([[[0.1, 0.1, 0.1, 0.1]]])}
    target = [{"labels": torch.tensor([1]), "boxes": torch.tensor([[0.8, 0.8, 0.1, 0.1]])}]
    out = crit(far, target, indices={"": [(torch.tensor([0]), torch.tensor([0]))]})
    assert out["loss_class"].item() == pytest.approx(_vfl(0.3, 0, 0), rel=1e-14)


def test_ultralytics_layer_without_matches_takes_the_focal_loss():
    # DETRLoss uses VFL only `if num_gts`: with no targets, focal (alpha 0.25, gamma 1.5) / max(0, 1),
    # whose negatives weigh 1 - alpha = 0.75 (VFL's would weigh alpha = 0.25).
    crit = _ul_crit(2)
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)}
    out = crit(_outputs(LOGITS_FOCAL), [empty])
    want = sum(_focal(x, 0, alpha=0.25, gamma=1.5) for row in LOGITS_FOCAL for x in row)
    assert out["loss_class"].item() == pytest.approx(want, rel=1e-14)
    assert out["loss_bbox"].item() == 0.0 and out["loss_giou"].item() == 0.0


def test_ultralytics_normalises_by_matched_pairs():
    # 3 targets, 2 queries: DETRLoss divides by len(gt_bboxes[gt_idx]) = 2, the DETR family by 3
    # (test_focal_is_normalised_by_target_count_not_matched_count).
    logits = torch.tensor([[[0.3, -0.2], [1.0, 0.5]]])
    boxes = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.4, 0.4, 0.2, 0.2]]])
    targets = [{"labels": torch.tensor([0, 1, 1]), "boxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.4, 0.4, 0.2, 0.1],
                                                                          [0.6, 0.6, 0.1, 0.1]])}]
    out = _ul_crit(2)({"pred_logits": logits, "pred_boxes": boxes}, targets,
                      indices={"": [(torch.tensor([0, 1]), torch.tensor([0, 1]))]})
    # query 0 == target 0: iou 0.04 / (0.04 + 1e-7); query 1 (h 0.2) covers target 1 (h 0.1): iou 0.02 / (0.04 + 1e-7).
    iou0, iou1 = 0.04 / (0.04 + 1e-7), 0.02 / (0.04 + 1e-7)
    want = (_vfl(0.3, iou0, 1) + _vfl(-0.2, 0, 0) + _vfl(1.0, 0, 0) + _vfl(0.5, iou1, 1)) / 2
    assert out["loss_class"].item() == pytest.approx(want, rel=1e-14)
    assert out["loss_bbox"].item() == pytest.approx(5 * 0.1 / 2, rel=1e-13)   # only |0.2 - 0.1| in h


def test_ultralytics_aux_keys_sum_the_other_layers_and_dn_is_zero_without_queries():
    crit = _ul_crit(3)
    main, aux0, aux1, enc = (_random_layer(3, seed=s) for s in (0, 1, 2, 3))
    targets = _random_targets(3)
    out = crit({**main, "aux_outputs": [aux0, aux1], "interm_outputs": enc}, targets)
    alone = [crit(layer, targets) for layer in (enc, aux0, aux1)]
    for k in ("loss_class", "loss_bbox", "loss_giou"):
        assert out[f"{k}_aux"].item() == pytest.approx(sum(a[k].item() for a in alone), rel=1e-13)
        assert out[k].item() == pytest.approx(crit(main, targets)[k].item(), rel=1e-14)
    no_dn = crit({**main, "aux_outputs": [aux0], "dn_meta": {"pad_size": 0, "num_dn_group": 1}}, targets)
    assert set(no_dn) == UL_DN_KEYS and all(no_dn[f"{k}_dn"].item() == 0.0 for k in UL_KEYS)


def _rtdetr_dn_problem(seed=5):
    # Two images with 2 and 1 targets, G = 2 groups of 2M = 4 slots: positives at g * 4 + t.
    g = torch.Generator().manual_seed(seed)
    layers, dn_layers = 3, 2   # encoder + 2 decoder layers; the dn part has the decoder's 2 layers
    boxes = torch.rand(layers, 2, 5, 4, generator=g) * 0.4 + 0.2
    scores = torch.randn(layers, 2, 5, 3, generator=g)
    dn_boxes = torch.rand(dn_layers, 2, 8, 4, generator=g) * 0.4 + 0.2
    dn_scores = torch.randn(dn_layers, 2, 8, 3, generator=g)
    labels, gt = torch.tensor([0, 2, 1]), torch.rand(3, 4, generator=g) * 0.3 + 0.3
    return boxes, scores, dn_boxes, dn_scores, labels, gt


def test_ultralytics_matches_rtdetr_detection_loss_with_denoising():
    ul = import_or_skip("ultralytics.models.utils.loss", UL_INSTALL)
    boxes, scores, dn_boxes, dn_scores, labels, gt = _rtdetr_dn_problem()
    dn_meta = {"dn_pos_idx": [torch.tensor([0, 1, 4, 5]), torch.tensor([0, 4])],
               "dn_gt_idx": [torch.tensor([0, 1]), torch.tensor([2])], "dn_num_group": 2, "dn_num_split": [8, 5]}
    upstream = ul.RTDETRDetectionLoss(nc=3, use_vfl=True)(
        (boxes, scores), {"cls": labels, "bboxes": gt, "gt_groups": [2, 1]}, dn_bboxes=dn_boxes, dn_scores=dn_scores,
        dn_meta=dn_meta)

    def layer(b, s, i):
        return {"pred_boxes": b[i], "pred_logits": s[i]}
    outputs = {**layer(boxes, scores, 2), "interm_outputs": layer(boxes, scores, 0),
               "aux_outputs": [layer(boxes, scores, 1)], "dn_meta": {"pad_size": 8, "num_dn_group": 2},
               "dn_outputs": {**layer(dn_boxes, dn_scores, 1), "aux_outputs": [layer(dn_boxes, dn_scores, 0)]}}
    ref = _ul_crit(3)(outputs, [{"labels": labels[:2], "boxes": gt[:2]}, {"labels": labels[2:], "boxes": gt[2:]}])
    assert set(ref) == set(upstream) == UL_DN_KEYS
    for k, v in upstream.items():
        # VarifocalLoss computes its BCE in float32 (utils/loss.py:53-58): float32 agreement for the class terms;
        # the box terms run in float64 upstream too.
        tol = 2e-6 if k.startswith("loss_class") else 1e-12
        assert ref[k].item() == pytest.approx(v.item(), rel=tol), k


@pytest.mark.parametrize("seed", range(4))
def test_ultralytics_matches_detr_loss_values_and_gradients(seed):
    ul = import_or_skip("ultralytics.models.utils.loss", UL_INSTALL)
    g = torch.Generator().manual_seed(seed)
    counts = [[3, 1], [0, 2], [5, 1], [2, 2]][seed]      # one image without targets; more targets than queries (4)
    n = sum(counts)
    boxes = (torch.rand(3, 2, 4, 4, generator=g) * 0.4 + 0.2).requires_grad_()
    scores = torch.randn(3, 2, 4, 4, generator=g, requires_grad=True)
    labels, gt = torch.randint(0, 4, (n,), generator=g), torch.rand(n, 4, generator=g) * 0.3 + 0.3
    upstream = ul.DETRLoss(nc=4, use_vfl=True)(boxes, scores, {"cls": labels, "bboxes": gt, "gt_groups": counts})
    up_grads = torch.autograd.grad(sum(upstream.values()), (boxes, scores))

    b, s = boxes.detach().clone().requires_grad_(), scores.detach().clone().requires_grad_()
    targets = [{"labels": labels[:counts[0]], "boxes": gt[:counts[0]]},
               {"labels": labels[counts[0]:], "boxes": gt[counts[0]:]}]
    crit = _ul_crit(4)
    ref = crit({"pred_boxes": b[2], "pred_logits": s[2], "interm_outputs": {"pred_boxes": b[0], "pred_logits": s[0]},
                "aux_outputs": [{"pred_boxes": b[1], "pred_logits": s[1]}]}, targets)
    assert set(ref) == set(upstream)
    for k, v in upstream.items():
        tol = 2e-6 if k.startswith("loss_class") else 1e-12     # VFL's float32 BCE, as above
        assert ref[k].item() == pytest.approx(v.item(), rel=tol), k
    ref_grads = torch.autograd.grad(crit.total(ref), (b, s))
    for mine, theirs in zip(ref_grads, up_grads):
        # The class terms' gradients carry VFL's float32 rounding (about 1e-7 relative, absolute <= 1e-7 here).
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)


def test_ultralytics_focal_convention_matches_detr_loss_without_vfl():
    # DETRLoss(use_vfl=False), its default: focal gamma 1.5 alpha 0.25 over the matched pairs. Its FocalLoss
    # multiplies by the float32 one-hot (one_hot.float()), so it agrees at float32 precision.
    ul = import_or_skip("ultralytics.models.utils.loss", UL_INSTALL)
    boxes, scores, _, _, labels, gt = _rtdetr_dn_problem(seed=8)
    upstream = ul.DETRLoss(nc=3)(boxes, scores, {"cls": labels, "bboxes": gt, "gt_groups": [2, 1]})
    crit = _ul_crit(3, classification="focal")
    ref = crit({"pred_boxes": boxes[2], "pred_logits": scores[2],
                "aux_outputs": [{"pred_boxes": boxes[i], "pred_logits": scores[i]} for i in (0, 1)]},
               [{"labels": labels[:2], "boxes": gt[:2]}, {"labels": labels[2:], "boxes": gt[2:]}])
    for k, v in upstream.items():
        assert ref[k].item() == pytest.approx(v.item(), rel=2e-6 if k.startswith("loss_class") else 1e-12), k


def test_varifocal_primitive_matches_ultralytics_and_keeps_the_weight_gradient():
    ul = import_or_skip("ultralytics.utils.loss", UL_INSTALL)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 3, generator=g, requires_grad=True)
    labels = torch.zeros(2, 5, 3)
    labels[0, 1, 2] = labels[1, 4, 0] = labels[1, 0, 1] = 1.0
    q = labels * torch.tensor([0.7, 0.0, 0.3])   # one positive with target 0
    upstream = ul.VarifocalLoss(gamma=1.5, alpha=0.25)(x, q, labels.long())   # mean(1).sum() = sum / 5
    mine = L.varifocal_loss(x, q, labels, alpha=0.25, gamma=1.5, reduction="sum") / 5
    assert mine.item() == pytest.approx(upstream.item(), rel=2e-6)              # float32 BCE upstream
    (g_up,) = torch.autograd.grad(upstream, x)
    (g_mine,) = torch.autograd.grad(mine, x)
    torch.testing.assert_close(g_mine, g_up, rtol=1e-5, atol=1e-7)


def test_ultralytics_bad_inputs_are_refused():
    crit = _ul_crit(2)
    with pytest.raises(OracleInputError, match=r"outputs\['enc_outputs'\]: expected None: ultralytics' DETRLoss"):
        crit({**_outputs(LOGITS_FOCAL), "enc_outputs": _outputs(LOGITS_FOCAL)}, _targets())
    with pytest.raises(OracleInputError, match=r"outputs\['pred_masks'\]: expected None"):
        crit({**_outputs(LOGITS_FOCAL), "pred_masks": torch.zeros(1, 2, 2, 2)}, _targets())
    with pytest.raises(OracleInputError, match=r"world_num_boxes: expected None: num_boxes 'matched'"):
        crit(_outputs(LOGITS_FOCAL), _targets(), world_num_boxes=[1, 3])
    with pytest.raises(OracleInputError, match=r"key: expected a loss key of ultralytics' DETRLoss"):
        crit.weight_of("loss_ce")
    with pytest.raises(OracleInputError, match=r"SetCriterionConvention.keys: expected 'per_layer' with class_error"):
        SetCriterionConvention(classification="varifocal", keys="ultralytics")
    with pytest.raises(OracleInputError, match=r"SetCriterionConvention.keys: expected one of"):
        SetCriterionConvention(keys="mmdet")
    with pytest.raises(OracleInputError, match=r"matcher.class_cost: expected 'focal' to match the criterion's "
                                               r"varifocal logits, got 'softmax'"):
        SetCriterionConfig(2, get_profile("ultralytics").criterion, get_profile("detr").matcher)
    with pytest.raises(OracleInputError, match=r"labels: expected a 0/1 positive mask, got 0.5"):
        L.varifocal_loss(torch.zeros(2, 2), torch.zeros(2, 2), torch.full((2, 2), 0.5))
    with pytest.raises(OracleInputError, match=r"targets: expected values <= 1.0"):
        L.varifocal_loss(torch.zeros(2, 2), torch.full((2, 2), 1.5), torch.ones(2, 2))
