"""DETR-family Hungarian matching: golden cases and generated tie-free and tie-rich problems."""

from __future__ import annotations

import pytest
from hypothesis import given

from conformance import strategies as S
from conformance._cases import generated, golden_params
from oracle.conventions import get_profile, profiles_with

#: Every profile with a matcher convention (oracle.conventions.profiles_with).
PROFILES = profiles_with("matcher")
#: The profiles whose matcher computes on non-finite predictions (MatcherConvention.non_finite_cost); the others
#: must raise on them (conformance/invalid_inputs.py).
NON_FINITE_PROFILES = tuple(p for p in PROFILES if get_profile(p).matcher.non_finite_cost != "raise")


@pytest.mark.parametrize("case", golden_params("assign.hungarian"))
def test_golden(case, detconf, request):
    detconf.check_case(case, request)


@pytest.mark.parametrize("ties", ["tie-free", "tie-rich"])
@pytest.mark.parametrize("profile", PROFILES)
@generated
@given(data=S.st.data())
def test_hungarian_generated(detconf, request, profile, ties, data):
    from oracle.conventions import get_profile
    matcher = get_profile(profile).matcher
    problem = data.draw(S.matching_inputs(softmax=matcher.class_cost == "softmax", ties=ties == "tie-rich",
                                          pixel=matcher.giou.units == "pixel"), label=ties)
    # About half the draws replace the profile's weights (and focal parameters): a constant where a model's config
    # has a number shows.
    overrides = data.draw(S.matcher_overrides(matcher.class_cost), label="matcher")
    detconf.check_generated("assign.hungarian", problem, {"matcher": overrides} if overrides else {}, profile,
                            request)


@pytest.mark.parametrize("profile", PROFILES)
@generated
@given(data=S.st.data())
def test_hungarian_large_logits(detconf, request, profile, data):
    """Tie-free problems with about half the logits of magnitude 9-32 (strategies.large_logits): a decoder's saturated
    scores, where a focal cost's ``1 - sigmoid(x)`` is rounded to 0 in the candidate's dtype (float16 from 9 on,
    float32 from about 17 on) and a "safe" clamp of the logits or probabilities shows."""
    matcher = get_profile(profile).matcher
    problem = data.draw(S.matching_inputs(softmax=matcher.class_cost == "softmax", pixel=matcher.giou.units == "pixel",
                                          large=True), label="tie-free")
    overrides = data.draw(S.matcher_overrides(matcher.class_cost), label="matcher")
    detconf.check_generated("assign.hungarian", problem, {"matcher": overrides} if overrides else {}, profile,
                            request)


@pytest.mark.parametrize("where", ["pred_logits", "pred_boxes"])
@pytest.mark.parametrize("profile", NON_FINITE_PROFILES)
@generated
@given(data=S.st.data())
def test_hungarian_non_finite(detconf, request, profile, where, data):
    """NaN and ±inf predictions (logits or boxes: each draw has a NaN) under a matcher that replaces non-finite costs
    (``"max"``: avoided where a matching can avoid them, the finite entries matched optimally; ``"zero"``: they cost
    0)."""
    matcher = get_profile(profile).matcher
    problem = data.draw(S.matching_inputs(softmax=matcher.class_cost == "softmax", pixel=matcher.giou.units == "pixel"),
                        label="tie-free")
    problem = data.draw(S.non_finite_predictions(problem, where), label="non-finite")
    detconf.check_generated("assign.hungarian", problem, {}, profile, request)
