"""DETR-family criteria: the set criterion, DINO's denoising queries, mmdet's DETR heads."""

from __future__ import annotations

import pytest
from hypothesis import given

from conformance import strategies as S
from conformance._cases import generated, golden_params
from oracle.conventions import profiles_with

#: Every profile with a criterion convention (oracle.conventions.profiles_with).
PROFILES = profiles_with("criterion")


@pytest.mark.parametrize("case", golden_params("criteria.set_criterion", "criteria.cdn", "criteria.mmdet_detr_head"))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


@pytest.mark.parametrize("profile", PROFILES)
@generated
@given(data=S.st.data())
def test_set_criterion_generated(detconf, request, profile, data):
    from oracle.conventions import get_profile
    softmax = get_profile(profile).criterion.classification == "softmax"
    logits, boxes, targets = data.draw(S.criterion_batch(num_classes=3, softmax=softmax, layers=2, max_images=2,
                                                         max_queries=4, max_targets=4))
    outputs = {"pred_logits": logits[-1], "pred_boxes": boxes[-1],
               "aux_outputs": [{"pred_logits": logits[0], "pred_boxes": boxes[0]}]}
    detconf.check_generated("criteria.set_criterion", {"outputs": outputs, "targets": targets}, {"num_classes": 3},
                            profile, request)


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
