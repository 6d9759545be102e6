"""Golden cases of the Hungarian matching (``assign.hungarian``; conformance/test_matching.py)."""

from __future__ import annotations


from oracle import conventions as conv

from ..case import Case, f64, i64, rand_layer, rand_targets


def cases() -> list[Case]:
    cases = []

    def problem(rng, b, q, counts, c, softmax, pixel=False):
        k = c + 1 if softmax else c
        return {**rand_layer(rng, b, q, k),
                "targets": rand_targets(rng, counts, c, image_size=(480.0, 640.0) if pixel else None)}
    for i, profile in enumerate(("detr", "deformable_detr", "hf_deformable_detr", "dino", "mmdet", "ultralytics")):
        softmax = conv.get_profile(profile).matcher.class_cost == "softmax"
        pixel = conv.get_profile(profile).matcher.giou.units == "pixel"
        cases.append(Case(f"assign.hungarian/random-small-{profile}", "assign.hungarian", profile, {}, 400 + i,
                          ("random",), lambda rng, s=softmax, p=pixel: problem(rng, 2, 6, [3, 4], 5, s, p)))
    cases.append(Case("assign.hungarian/random-realistic-detr", "assign.hungarian", "detr", {}, 410,
                      ("random", "size:realistic"), lambda rng: problem(rng, 2, 100, [20, 7], 91, True)))
    cases.append(Case("assign.hungarian/random-realistic-dino", "assign.hungarian", "dino", {}, 411,
                      ("random", "size:realistic"), lambda rng: problem(rng, 2, 300, [50, 3], 91, False)))
    cases.append(Case("assign.hungarian/edge-empty-targets", "assign.hungarian", "detr", {}, 420,
                      ("edge:empty-targets",), lambda rng: problem(rng, 2, 4, [0, 2], 3, True)))
    cases.append(Case("assign.hungarian/edge-more-targets-than-queries", "assign.hungarian", "dino", {}, 421,
                      ("edge:more-targets-than-queries",), lambda rng: problem(rng, 1, 3, [6], 4, False)))
    cases.append(Case("assign.hungarian/edge-empty-targets-ultralytics", "assign.hungarian", "ultralytics", {}, 423,
                      ("edge:empty-targets",), lambda rng: problem(rng, 3, 4, [0, 3, 0], 3, False)))
    cases.append(Case("assign.hungarian/edge-more-targets-than-queries-ultralytics", "assign.hungarian", "ultralytics",
                      {}, 424, ("edge:more-targets-than-queries",), lambda rng: problem(rng, 2, 3, [5, 2], 4, False)))
    cases.append(Case("assign.hungarian/edge-saturated-logits", "assign.hungarian", "mmdet", {}, 422,
                      ("edge:saturated-logits",),
                      lambda rng: {**problem(rng, 1, 4, [2], 3, True, True),
                                   "pred_logits": f64([[[30.0, -30, -30, -30], [-30, 30, -30, -30], [-30, -30, -30, 30],
                                                        [30, 30, -30, -30]]])}))

    # One query saturated at its target's class (logit 12: sigmoid rounds to 1 in float16 and bfloat16) with a
    # slightly worse box than a query at logit 0 with the exact box: the focal class cost decides for the first.
    # A cost evaluated in half precision there meets log(0) (1 - p + 1e-8 rounds to 0 in float16).
    cases.append(Case("assign.hungarian/edge-one-saturated-query", "assign.hungarian", "dino", {}, 425,
                      ("edge:saturated-logits",),
                      lambda rng: {"pred_logits": f64([[[-2.0, 12.0, -2.0, -2.0], [-2.0, 0.0, -2.0, -2.0],
                                                        [-2.0, -2.0, -2.0, -2.0]]]),
                                   "pred_boxes": f64([[[0.53, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2],
                                                       [0.2, 0.2, 0.1, 0.1]]]),
                                   "targets": [{"labels": i64([1]), "boxes": f64([[0.5, 0.5, 0.2, 0.2]])}]}))

    # Three queries crowd the first target under the focal class cost of Deformable-DETR (transformers' weights:
    # class 2, bbox 5, GIoU 2; models/deformable_detr.py HungarianMatcher, transformers loss/loss_deformable_detr.py)
    # with focal alpha 0.75 from the config: query 1 (logit -1, the target's box) is optimal at alpha 0.75 (cost
    # -1.479 against query 0's -0.734), query 0 (logit 3, a box 0.22 wide for 0.31) at alpha 0.25 (-2.117 against
    # -1.841): the matching shows which alpha a matcher uses, with a margin of 0.28 or more in cost.
    cases.append(Case("assign.hungarian/edge-focal-alpha-decides-hf_deformable_detr", "assign.hungarian",
                      "hf_deformable_detr", {"matcher": {"focal_alpha": 0.75}}, 426, ("edge:crowded-queries",),
                      lambda rng: {"pred_logits": f64([[[3.0, -2.0], [-1.0, -2.0], [-2.0, 2.5], [-2.0, -0.5]]]),
                                   "pred_boxes": f64([[[0.5, 0.5, 0.21875, 0.21875], [0.5, 0.5, 0.3125, 0.3125],
                                                       [0.5, 0.5, 0.25, 0.25], [0.3125, 0.3125, 0.1875, 0.1875]]]),
                                   "targets": [{"labels": i64([0, 1]),
                                                "boxes": f64([[0.5, 0.5, 0.3125, 0.3125],
                                                              [0.3125, 0.3125, 0.1875, 0.1875]])}]}))

    def tie(rng):
        # Two identical queries and one target: both matchings cost the same; the declared tie-break is
        # what scipy's linear_sum_assignment returns on the float64 matrix.
        return {"pred_logits": f64([[[1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]]),
                "pred_boxes": f64([[[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]]]),
                "targets": [{"labels": i64([0]), "boxes": f64([[0.45, 0.5, 0.2, 0.3]])}]}
    cases.append(Case("assign.hungarian/edge-tie-declared-tie-break", "assign.hungarian", "detr", {}, 0,
                      ("edge:tie",), tie))
    return cases
