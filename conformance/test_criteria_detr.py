"""DETR-family criteria: the set criterion, DINO's denoising queries, mmdet's DETR heads."""

from __future__ import annotations

import pytest
from hypothesis import given

from conformance import strategies as S
from conformance._cases import costly, generated, golden_params
from oracle.conventions import get_profile, profiles_with

#: Every profile with a criterion convention (oracle.conventions.profiles_with).
PROFILES = profiles_with("criterion")


@pytest.mark.parametrize("case", golden_params("criteria.set_criterion", "criteria.cdn", "criteria.mmdet_detr_head"))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


@pytest.mark.parametrize("profile", PROFILES)
@generated
@given(data=S.st.data())
def test_set_criterion_generated(detconf, request, profile, data):
    p = get_profile(profile)
    softmax = p.criterion.classification == "softmax"
    logits, boxes, targets = data.draw(S.criterion_batch(num_classes=3, softmax=softmax, layers=2, max_images=2,
                                                         max_queries=4, max_targets=4))
    outputs = {"pred_logits": logits[-1], "pred_boxes": boxes[-1],
               "aux_outputs": [{"pred_logits": logits[0], "pred_boxes": boxes[0]}]}
    # About half the draws replace the profile's loss weights, no-object weight or focal parameters, and about half
    # its own matcher's cost weights and focal parameters: a constant where a model's config has a number shows.
    config = {"num_classes": 3,
              **_overrides(data, S.CRITERION_FIELD_VALUES, p.criterion.classification, p.matcher.class_cost)}
    detconf.check_generated("criteria.set_criterion", {"outputs": outputs, "targets": targets}, config, profile,
                            request)


#: The profiles whose libraries compute DETR's mask terms (``loss_mask``, ``loss_dice``): facebookresearch/detr
#: ``--masks`` (models/segmentation.py) and transformers' ``DetrForSegmentation``.
MASK_PROFILES = ("detr", "hf_detr")


@pytest.mark.parametrize("profile", MASK_PROFILES)
@costly(2)
@given(data=S.st.data())
def test_set_criterion_masks_generated(detconf, request, profile, data):
    # Each draw pads the targets' masks of its own sizes and resizes the predicted masks to them; about half the draws
    # replace the mask terms' weights, about half the other loss weights and the matcher's cost weights.
    logits, boxes, targets = data.draw(S.criterion_batch(num_classes=3, softmax=True, layers=2, max_images=2,
                                                         max_queries=4, max_targets=4))
    pred_masks, targets = data.draw(S.with_masks(logits, targets), label="masks")
    outputs = {"pred_logits": logits[-1], "pred_boxes": boxes[-1], "pred_masks": pred_masks,
               "aux_outputs": [{"pred_logits": logits[0], "pred_boxes": boxes[0]}]}
    p = get_profile(profile)
    config = {"num_classes": 3, **_overrides(data, {**S.CRITERION_FIELD_VALUES, **S.MASK_FIELD_VALUES},
                                             p.criterion.classification, p.matcher.class_cost)}
    detconf.check_generated("criteria.set_criterion", {"outputs": outputs, "targets": targets}, config, profile,
                            request)


def _overrides(data, values: dict, classification: str, class_cost: str, *, matcher: bool = True) -> dict:
    """The config's ``criterion`` and (with ``matcher``) ``matcher`` overrides of one draw (each left out when
    empty)."""
    criterion = data.draw(S.convention_overrides(values, classification), label="criterion")
    matcher = data.draw(S.matcher_overrides(class_cost), label="matcher") if matcher else {}
    return {k: v for k, v in (("criterion", criterion), ("matcher", matcher)) if v}


#: mmdet's DETR heads with a generated test: DETRHead (softmax) and DeformableDETRHead (focal) without the encoder
#: output; DINOHead's loss needs denoising queries (its golden cases).
MMDET_HEADS = ("detr", "deformable_detr")


@pytest.mark.parametrize("head", MMDET_HEADS)
@generated
@given(data=S.st.data())
def test_mmdet_detr_head_generated(detconf, request, head, data):
    from components.contract import MMDET_HEADS as CONVENTIONS
    h = CONVENTIONS[head]
    inputs = data.draw(S.mmdet_head_inputs(softmax=h.classification == "softmax"))
    config = {"head": head, "num_classes": 3,
              **_overrides(data, S.MMDET_HEAD_FIELD_VALUES, h.classification, h.matcher.class_cost)}
    detconf.check_generated("criteria.mmdet_detr_head", inputs, config, "mmdet", request)


#: The profiles whose models give Deformable-DETR's two-stage encoder proposals (``enc_outputs``, matched to
#: class-agnostic targets): fundamentalvision/Deformable-DETR ``two_stage``, transformers
#: ``DeformableDetrForObjectDetection(two_stage=True)`` (``enc_outputs_class``, ``enc_outputs_coord_logits``).
#: DINO's encoder output, matched to the real labels, is ``interm_outputs``.
TWO_STAGE_PROFILES = ("deformable_detr", "hf_deformable_detr")


@pytest.mark.parametrize("profile", TWO_STAGE_PROFILES)
@generated
@given(data=S.st.data())
def test_set_criterion_two_stage_generated(detconf, request, profile, data):
    logits, boxes, targets = data.draw(S.criterion_batch(num_classes=3, softmax=False, layers=3, max_images=2,
                                                         max_queries=4, max_targets=4))
    outputs = {"pred_logits": logits[-1], "pred_boxes": boxes[-1],
               "aux_outputs": [{"pred_logits": logits[1], "pred_boxes": boxes[1]}],
               "enc_outputs": {"pred_logits": logits[0], "pred_boxes": boxes[0]}}
    detconf.check_generated("criteria.set_criterion", {"outputs": outputs, "targets": targets}, {"num_classes": 3},
                            profile, request)


@generated
@given(data=S.st.data())
def test_cdn_generated(detconf, request, data):
    # Some label-noise draws lie exactly at label_noise_ratio / 2, in every dtype (strategies.cdn_label_p).
    inputs, config = data.draw(S.cdn_inputs())
    detconf.check_generated("criteria.cdn", inputs, config, "dino", request)
