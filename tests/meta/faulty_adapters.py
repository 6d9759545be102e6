"""Deliberately faulty adapters: the reference with one plausible bug each (tests/meta/test_conformance_suite.py).

Each factory returns an Adapter whose components are the reference's, except one. They exist to prove
that the suite catches the bug and classes it correctly; none of them is an implementation to trust.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from conformance.adapters import Adapter
from components.contract import COMPONENTS, call_overlap, call_set_criterion, matcher_convention, set_criterion_config
from oracle import boxes as box_ops
from oracle.assign.hungarian import matching_cost_matrix
from oracle.assign.max_iou import max_iou_assign
from oracle.conventions import IOU_DINO, MaxIoUConvention, get_profile


def _with(name: str, **replaced) -> Adapter:
    components = {n: c.call for n, c in COMPONENTS.items()}
    components.update(replaced)
    return Adapter(name=name, version="0-faulty", components=components)


def wrong_giou_eps() -> Adapter:
    """GIoU always with DINO's additive 1e-6, whatever the profile says."""
    def overlap(inputs, config, profile):
        if config["op"] != "giou":
            return call_overlap(inputs, config, profile)
        return {"value": box_ops.giou(inputs["boxes1"], inputs["boxes2"], aligned=config["aligned"], fmt=config["fmt"],
                                convention=IOU_DINO)}
    return _with("wrong-giou-eps", **{"boxes.overlap": overlap})


def iou_loss_zero_weights_raise() -> Adapter:
    """The IoU losses' early return for all-zero weights as mmdet wrote it before PR #4456: ``(pred * weight).sum()``
    with pred ``[n, 4]`` and weight ``[n]``, which does not broadcast (raises) unless n is 1 or 4 (then a scalar 0)."""
    def loss(name):
        def call(inputs, config, profile):
            w = inputs.get("weight")
            if w is not None and not bool((w > 0).any()):
                return {"loss": (inputs["pred"] * w).sum()}
            return COMPONENTS[name].call(inputs, config, profile)
        return call
    return _with("iou-loss-zero-weights-raise", **{n: loss(n) for n in
                                                    ("losses.giou_loss", "losses.diou_loss", "losses.ciou_loss")})


def focal_wrong_count() -> Adapter:
    """The focal class loss divided by the number of queries instead of the number of target boxes."""
    def criterion(inputs, config, profile):
        out = call_set_criterion(inputs, config, profile)
        if get_profile(profile).criterion.classification != "focal":
            return out
        num_boxes = max(float(sum(len(t["labels"]) for t in inputs["targets"])), 1.0)
        queries = float(inputs["outputs"]["pred_logits"].shape[1])
        losses = {k: (v * num_boxes / queries if k.startswith("loss_ce") else v) for k, v in out["losses"].items()}
        from oracle.criteria import SetCriterion
        crit = SetCriterion(set_criterion_config(config, profile))
        return {**out, "losses": losses, "total": crit.total(losses)}
    return _with("focal-wrong-count", **{"criteria.set_criterion": criterion})


def _per_image(inputs, config, profile, solve, matcher=None):
    """``assign.hungarian`` outputs with each image's reference cost matrix (under ``matcher``, by default the
    profile's with the config's ``matcher`` overrides) solved by ``solve(cost) -> (rows, cols)``."""
    matcher = matcher or matcher_convention(config, profile)
    indices, costs = [], []
    for b, target in enumerate(inputs["targets"]):
        cost = matching_cost_matrix(inputs["pred_logits"][b], inputs["pred_boxes"][b], target, convention=matcher)
        rows, cols = solve(cost.numpy())
        order = np.argsort(rows, kind="stable")
        indices.append({"pred": torch.as_tensor(np.asarray(rows)[order], dtype=torch.int64),
                        "gt": torch.as_tensor(np.asarray(cols)[order], dtype=torch.int64)})
        costs.append(cost)
    total = torch.tensor([float(c[i["pred"], i["gt"]].sum()) if len(i["pred"]) else 0.0
                          for c, i in zip(costs, indices)], dtype=torch.float64)
    return {"indices": indices, "cost": costs, "total_cost": total}


def _hardcoded_matcher(name: str, **constants) -> Adapter:
    """An optimal matcher whose cost keeps ``constants`` (MatcherConvention fields) whatever the config's ``matcher``
    sets: the port that writes the default where the model's config has a number. It returns the matching only (no
    cost matrix, as transformers' and ultralytics' matchers), so that the matching itself must show it."""
    def matcher(inputs, config, profile):
        m = dataclasses.replace(matcher_convention(config, profile), **constants)
        return {"indices": _per_image(inputs, config, profile, linear_sum_assignment, matcher=m)["indices"]}
    return _with(name, **{"assign.hungarian": matcher})


def matcher_alpha_hardcoded() -> Adapter:
    """A focal-cost matcher with alpha fixed at 0.25, as transformers' DeformableDetrHungarianMatcher and
    Deformable-DETR's matcher write it while their loss takes the config's focal_alpha."""
    return _hardcoded_matcher("matcher-alpha-hardcoded", focal_alpha=0.25)


def matcher_giou_weight_hardcoded() -> Adapter:
    """A matcher whose GIoU cost weight is fixed at 2 (the DETR-family default), whatever the config sets, as
    ultralytics' DETRLoss fixes its matcher's cost gains."""
    return _hardcoded_matcher("matcher-giou-weight-hardcoded", weight_giou=2.0)


def _criterion_constants(name: str, component: str, criterion: dict | None = None,
                         matcher: dict | None = None) -> Adapter:
    """The reference ``component`` whose config's ``criterion`` and ``matcher`` fields keep ``criterion`` /
    ``matcher`` (their fields) whatever the config sets: the port that writes the default where the model's config
    has a number."""
    def rewrite(c):
        for key, constants in (("criterion", criterion), ("matcher", matcher)):
            if constants:
                c[key] = {**dict(c.get(key) or {}), **constants}
        return c
    return _hardcoded_config(name, rewrite, component)


def criterion_focal_alpha_hardcoded() -> Adapter:
    """A focal set criterion whose loss keeps alpha 0.25 whatever the config's focal_alpha."""
    return _criterion_constants("criterion-focal-alpha-hardcoded", "criteria.set_criterion", {"focal_alpha": 0.25})


def criterion_focal_gamma_hardcoded() -> Adapter:
    """A focal set criterion whose loss keeps gamma 2 (transformers' DeformableDetrImageLoss writes gamma=2)."""
    return _criterion_constants("criterion-focal-gamma-hardcoded", "criteria.set_criterion", {"focal_gamma": 2.0})


def criterion_eos_coef_hardcoded() -> Adapter:
    """A softmax set criterion whose no-object class weight stays 0.1 whatever the config's eos_coef."""
    return _criterion_constants("criterion-eos-coef-hardcoded", "criteria.set_criterion", {"eos_coef": 0.1})


def criterion_bbox_weight_hardcoded() -> Adapter:
    """A set criterion whose total weights the L1 box loss 5 whatever the config's bbox coefficient."""
    return _criterion_constants("criterion-bbox-weight-hardcoded", "criteria.set_criterion", {"weight_bbox": 5.0})


def criterion_matcher_giou_weight_hardcoded() -> Adapter:
    """A set criterion whose own matcher keeps the GIoU cost weight 2 whatever the config sets (ultralytics'
    DETRLoss builds its matcher with fixed cost gains)."""
    return _criterion_constants("criterion-matcher-giou-weight-hardcoded", "criteria.set_criterion",
                             matcher={"weight_giou": 2.0})


def mmdet_detr_head_giou_weight_hardcoded() -> Adapter:
    """mmdet's DETR head losses with the GIoU loss weight 2 whatever the config's loss_iou.loss_weight."""
    return _criterion_constants("mmdet-detr-head-giou-weight-hardcoded", "criteria.mmdet_detr_head",
                             {"loss_weight_iou": 2.0})


def mmdet_detr_head_bg_cls_weight_hardcoded() -> Adapter:
    """mmdet's softmax DETR head losses with the background class weight 0.1 whatever the config's bg_cls_weight
    (focal heads, which have none, are the reference's)."""
    fixed = _criterion_constants("mmdet-detr-head-bg-cls-weight-hardcoded", "criteria.mmdet_detr_head",
                              {"bg_cls_weight": 0.1})
    call, constant = COMPONENTS["criteria.mmdet_detr_head"].call, fixed.components["criteria.mmdet_detr_head"]

    def head(inputs, config, profile):
        from components.contract import MMDET_HEADS
        softmax = MMDET_HEADS[config["head"]].classification == "softmax"
        return (constant if softmax else call)(inputs, config, profile)
    return _with("mmdet-detr-head-bg-cls-weight-hardcoded", **{"criteria.mmdet_detr_head": head})


def mmdet_detr_head_focal_alpha_hardcoded() -> Adapter:
    """mmdet's focal DETR head losses with alpha 0.25 whatever the config's loss_cls.alpha."""
    return _criterion_constants("mmdet-detr-head-focal-alpha-hardcoded", "criteria.mmdet_detr_head",
                             {"focal_alpha": 0.25})


def mmdet_detr_head_matcher_giou_weight_hardcoded() -> Adapter:
    """mmdet's DETR head losses whose HungarianAssigner keeps the IoUCost weight 2 whatever the config sets."""
    return _criterion_constants("mmdet-detr-head-matcher-giou-weight-hardcoded", "criteria.mmdet_detr_head",
                             matcher={"weight_giou": 2.0})


def greedy_matcher() -> Adapter:
    """Each target, in order, takes the cheapest query still free: valid, but not optimal."""
    def greedy(cost):
        rows, cols, used = [], [], set()
        for j in range(cost.shape[1]):
            free = [i for i in range(cost.shape[0]) if i not in used]
            if not free:
                break
            i = min(free, key=lambda r: cost[r, j])
            used.add(i)
            rows.append(i)
            cols.append(j)
        return rows, cols
    return _with("greedy-matcher", **{"assign.hungarian": lambda inputs, config, profile:
                                      _per_image(inputs, config, profile, greedy)})


def reversed_tie_break() -> Adapter:
    """An optimal matcher that breaks ties the other way (it solves the problem with the queries reversed)."""
    def reversed_solve(cost):
        rows, cols = linear_sum_assignment(cost[::-1])
        return cost.shape[0] - 1 - rows, cols
    return _with("reversed-tie-break", **{"assign.hungarian": lambda inputs, config, profile:
                                          _per_image(inputs, config, profile, reversed_solve)})


def wrong_focal_gradient() -> Adapter:
    """The right focal loss value with half its gradient."""
    def focal(inputs, config, profile):
        loss = COMPONENTS["losses.sigmoid_focal_loss"].call(inputs, config, profile)["loss"]
        return {"loss": loss.detach() + 0.5 * (loss - loss.detach())}
    return _with("wrong-focal-gradient", **{"losses.sigmoid_focal_loss": focal})


def naive_focal_in_input_dtype() -> Adapter:
    """Focal loss as log(sigmoid(x)) in the input's own dtype: right in float64, inf/NaN-prone in float32."""
    def focal(inputs, config, profile):
        x, t = inputs["logits"], inputs["targets"]
        p = torch.sigmoid(x)
        ce = -(t * torch.log(p) + (1 - t) * torch.log(1 - p))
        p_t = p * t + (1 - p) * (1 - t)
        loss = ce * (1 - p_t) ** config["gamma"]
        if config["alpha"] is not None:
            loss = (config["alpha"] * t + (1 - config["alpha"]) * (1 - t)) * loss
        reduction = config.get("reduction", "mean")
        if reduction == "sum":
            loss = loss.sum()
        elif reduction == "mean":
            loss = loss.sum() / config["avg_factor"] if "avg_factor" in config else loss.mean()
        return {"loss": loss}
    return _with("naive-focal", **{"losses.sigmoid_focal_loss": focal})


def wrong_giou_eps_known() -> Adapter:
    """wrong_giou_eps with a known-differences file that declares its DETR-profile GIoU cases."""
    from pathlib import Path
    adapter = wrong_giou_eps()
    adapter.known_differences = str(Path(__file__).with_name("data") / "known_wrong_giou.toml")
    return adapter


def wrong_giou_eps_known_float16() -> Adapter:
    """wrong_giou_eps whose known difference is declared for float16 runs only."""
    from pathlib import Path
    adapter = wrong_giou_eps()
    adapter.known_differences = str(Path(__file__).with_name("data") / "known_wrong_giou_float16.toml")
    return adapter


def wrong_giou_eps_nan_known() -> Adapter:
    """wrong_giou_eps that also returns NaN for its first pair, with wrong_giou_eps_known's file: the entry expects
    the eps difference (internal-precision on value and gradients), and a non-finite failure is not it."""
    from pathlib import Path
    base = wrong_giou_eps()
    overlap = base.components["boxes.overlap"]

    def with_nan(inputs, config, profile):
        out = overlap(inputs, config, profile)
        if config["op"] != "giou":
            return out
        first = torch.zeros_like(out["value"], dtype=torch.bool).flatten()
        first[0] = True
        return {"value": torch.where(first.reshape(out["value"].shape), float("nan"), out["value"])}
    adapter = _with("wrong-giou-eps-nan", **{"boxes.overlap": with_nan})
    adapter.known_differences = str(Path(__file__).with_name("data") / "known_wrong_giou.toml")
    return adapter


def wrong_giou_eps_generated_known() -> Adapter:
    """wrong_giou_eps with a known difference on the generated DETR GIoU test (known_wrong_giou_generated.toml)."""
    from pathlib import Path
    adapter = wrong_giou_eps()
    adapter.known_differences = str(Path(__file__).with_name("data") / "known_wrong_giou_generated.toml")
    return adapter


def wrong_giou_eps_nan_generated_known() -> Adapter:
    """wrong_giou_eps_nan_known with the generated test's known difference: hypothesis' final failure is non-finite."""
    adapter = wrong_giou_eps_nan_known()
    adapter.known_differences = wrong_giou_eps_generated_known().known_differences
    return adapter


def missing_components() -> Adapter:
    """Provides box conversion only: everything else must be reported as not provided."""
    return Adapter(name="partial", version="0", components={"boxes.convert": COMPONENTS["boxes.convert"].call})


def not_installed() -> Adapter:
    class Missing(Adapter):
        def available(self):
            from conformance.adapters import Support
            return Support(False, "No module named 'fancylib'")
    return Missing(name="fancylib", version="?", components={}, install="pip install fancylib")



def oracle_with_known_giou() -> Adapter:
    """The reference with the faulty adapter's known-differences file: its strict xfail must XPASS."""
    from pathlib import Path
    adapter = _with("oracle-with-known")
    adapter.known_differences = str(Path(__file__).with_name("data") / "known_wrong_giou.toml")
    return adapter


def off_by_one_nearest() -> Adapter:
    """Nearest resizing that rounds the source index instead of flooring it."""
    import numpy as np

    def resize(inputs, config, profile):
        mask = inputs["mask"]
        h, w = config["size"]

        def index(n_in, n_out):
            return torch.as_tensor(np.minimum(np.round(np.arange(n_out) * n_in / n_out).astype(np.int64), n_in - 1))
        return {"mask": mask.cpu()[..., index(mask.shape[-2], h), :][..., :, index(mask.shape[-1], w)]}
    return _with("off-by-one-nearest", **{"masks.resize": resize})


def pe_wrong_offset() -> Adapter:
    """The sine positional encoding with Deformable-DETR's -0.5 offset whatever the profile."""
    import dataclasses

    from oracle.position import sine_position_encoding

    def position(inputs, config, profile):
        convention = dataclasses.replace(get_profile(profile).position, num_feats=config.get("num_feats", 128),
                                         offset=-0.5)
        shape = tuple(config["shape"]) if "shape" in config else None
        return {"pos": sine_position_encoding(inputs.get("mask"), shape, convention=convention)}
    return _with("pe-wrong-offset", **{"position.sine": position})


def pe_in_float32() -> Adapter:
    """The right sine positional encoding, computed in float32 whatever the run's dtype (as mmdet's and the
    official DETR code's are): a lower-precision implementation, not another formula."""
    import dataclasses

    from oracle.position import sine_encoding_formula

    def position(inputs, config, profile):
        convention = dataclasses.replace(get_profile(profile).position,
                                         num_feats=config.get("num_feats", get_profile(profile).position.num_feats))
        mask = inputs.get("mask")
        valid = (~mask.cpu()).to(torch.float32) if mask is not None else torch.ones(tuple(config["shape"]))
        return {"pos": sine_encoding_formula(valid, convention)}
    return _with("pe-in-float32", **{"position.sine": position})


def area_without_half_kernel() -> Adapter:
    """boxes.area that declines degenerate boxes (the adapter's own NotProvided) and whose "library" has no
    float16 kernel (torch's own NotImplementedError): the first is not provided, the second must fail."""
    from conformance.adapters import NotProvided

    def area(inputs, config, profile):
        b = inputs["boxes"]
        if bool(((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) == 0).any()):
            raise NotProvided("this library takes boxes of positive area only")
        if inputs["boxes"].dtype == torch.float16:
            raise NotImplementedError('"box_area" not implemented for \'Half\'')
        return COMPONENTS["boxes.area"].call(inputs, config, profile)
    return _with("area-without-half-kernel", **{"boxes.area": area})


def slow_first_call() -> Adapter:
    """The reference, but its first call takes 2.5 s (an export, a compilation): beyond the dev profile's 2 s
    deadline, which the suite does not apply. It declares nothing."""
    import time
    state = {"first": True}

    def overlap(inputs, config, profile):
        if state.pop("first", False):
            time.sleep(2.5)
        return call_overlap(inputs, config, profile)
    return _with("slow-first-call", **{"boxes.overlap": overlap})


def hangs() -> Adapter:
    """The reference, but its box area never returns (a deadlock, a loop without end)."""
    import time

    def area(inputs, config, profile):
        while True:
            time.sleep(0.05)
    return _with("hangs", **{"boxes.area": area})


def kills_its_process() -> Adapter:
    """The reference, but its box area ends the process (as a native crash or an os._exit in a library does)."""
    import os

    def area(inputs, config, profile):
        os._exit(3)
    return _with("kills-its-process", **{"boxes.area": area})


def criterion_local_count() -> Adapter:
    """The set criterion normalised by its own rank's box count: it never all-reduces (a port that dropped
    DETR's ``torch.distributed.all_reduce(num_boxes)``). In one process it is the reference."""
    return _with("criterion-local-count", **{"criteria.set_criterion": COMPONENTS["criteria.set_criterion"].call})


def focal_cost_in_autocast_dtype() -> Adapter:
    """A focal-cost matcher that, inside ``torch.autocast``, computes its class cost in the autocast dtype with the
    additive 1e-8 of DINO's matcher (float16 rounds 1 - p + 1e-8 to 0 for a saturated logit: log(0), and an
    inf - inf cost), then makes the cost "safe" with nan_to_num: a wrong matching. Outside autocast, the reference."""
    def _focal(logits, labels, m):
        p = logits.sigmoid()
        neg = (1 - m.focal_alpha) * p ** m.focal_gamma * -(1 - p + 1e-8).log()
        pos = m.focal_alpha * (1 - p) ** m.focal_gamma * -(p + 1e-8).log()
        return (pos - neg)[:, labels].double()

    def matcher(inputs, config, profile):
        m = matcher_convention(config, profile)
        if not torch.is_autocast_enabled("cpu") or m.class_cost != "focal":
            return COMPONENTS["assign.hungarian"].call(inputs, config, profile)
        half = torch.get_autocast_dtype("cpu")

        def solve(b, cost64):
            logits, labels = inputs["pred_logits"][b].detach(), inputs["targets"][b]["labels"]
            cost = cost64 + m.weight_class * (_focal(logits.to(half), labels, m) - _focal(logits.double(), labels, m))
            return linear_sum_assignment(torch.nan_to_num(cost, nan=0.0, posinf=0.0, neginf=0.0).numpy())
        images = iter(range(len(inputs["targets"])))
        return _per_image(inputs, config, profile, lambda cost: solve(next(images), torch.as_tensor(cost)))
    return _with("focal-cost-in-autocast-dtype", **{"assign.hungarian": matcher})


class _ThreeLevelDecode(Adapter):
    """Provides heads.yolov8_decode for models of three feature levels only (a port of one model's head)."""

    def supports(self, component, device, dtype, profile, config=None):
        base = super().supports(component, device, dtype, profile, config)
        if base and component == "heads.yolov8_decode" and config is not None and len(config["strides"]) != 3:
            from conformance.adapters import Support
            return Support(False, f"{self.name} decodes 3-level models only, not {len(config['strides'])} levels")
        return base


def _three_level_decode(name: str, decode) -> Adapter:
    return _ThreeLevelDecode(name=name, version="0-faulty", components={"heads.yolov8_decode": decode})


def decode_three_levels() -> Adapter:
    """The reference's YOLOv8 box decode, provided for 3-level models only (every other draw is declined)."""
    return _three_level_decode("decode-three-levels", COMPONENTS["heads.yolov8_decode"].call)


def decode_three_levels_swapped_strides() -> Adapter:
    """decode_three_levels with the strides of the last two levels swapped (8, 32, 16): wrong on every draw
    it accepts."""
    def decode(inputs, config, profile):
        strides = list(config["strides"])
        strides[1], strides[2] = strides[2], strides[1]
        return COMPONENTS["heads.yolov8_decode"].call(inputs, {**config, "strides": strides}, profile)
    return _three_level_decode("decode-three-levels-swapped-strides", decode)


def decode_declines_every_input() -> Adapter:
    """Provides heads.yolov8_decode, but its call declines every input it is given (NotProvided)."""
    from conformance.adapters import NotProvided

    def decode(inputs, config, profile):
        raise NotProvided("this port takes its feature maps from a model it builds itself")
    return Adapter(name="decode-declines-every-input", version="0-faulty",
                   components={"heads.yolov8_decode": decode})


def hungarian_int32_indices() -> Adapter:
    """The reference's optimal matching, returned as int32 indices (right values, the dtype facebookresearch/detr's
    matcher returned before it fixed it: int32 indices fail its criterion's indexing on other platforms)."""
    def matcher(inputs, config, profile):
        out = COMPONENTS["assign.hungarian"].call(inputs, config, profile)
        return {**out, "indices": [{k: v.to(torch.int32) for k, v in pair.items()} for pair in out["indices"]]}
    return _with("hungarian-int32-indices", **{"assign.hungarian": matcher})


def strict_comparison(convention: MaxIoUConvention, threshold: str) -> MaxIoUConvention:
    """``convention`` with the comparison at one threshold (a name of conformance.strategies.max_iou_thresholds)
    wrong about equality: ``>`` for ``>=`` at ``pos_iou_thr``, ``min_pos_iou`` and the negative range's lower
    end (``neg_iou_thr[lo]``), ``<=`` for ``<`` at its upper end (``neg_iou_thr``).

    The threshold moves up by one float64 ULP: on the reference's float64 overlaps ``x >= nextafter(t, inf)`` is
    ``x > t`` and ``x < nextafter(t, inf)`` is ``x <= t``, so only an overlap exactly at ``t`` decides otherwise."""
    def up(t: float) -> float:
        return math.nextafter(t, math.inf)
    lo, hi = convention.negative_range
    if threshold == "neg_iou_thr":
        neg = (lo, up(hi)) if isinstance(convention.neg_iou_thr, tuple) else up(hi)
        return dataclasses.replace(convention, neg_iou_thr=neg)
    if threshold == "neg_iou_thr[lo]":
        return dataclasses.replace(convention, neg_iou_thr=(up(lo), hi))
    if threshold in ("pos_iou_thr", "min_pos_iou"):
        return dataclasses.replace(convention, **{threshold: up(getattr(convention, threshold))})
    raise ValueError(f"no threshold {threshold!r} in a MaxIoUConvention")


def max_iou_strict_positive() -> Adapter:
    """The reference's max-IoU assigner with ``best > pos_iou_thr`` for a positive (mmdet's MaxIoUAssigner and
    torchvision's Matcher: ``>=``): a prior exactly at the threshold stays ignored, unless the low-quality step
    makes it positive (as its GT's best prior)."""
    from components.dense_calls import max_iou_convention

    def assign(inputs, config, profile):
        convention = strict_comparison(max_iou_convention(config, profile), "pos_iou_thr")
        result = max_iou_assign(inputs["priors"], inputs["gt_boxes"], inputs["gt_labels"], convention=convention,
                                gt_boxes_ignore=inputs.get("gt_boxes_ignore"))
        return {"gt_inds": result.gt_inds, "max_overlaps": result.max_overlaps, "labels": result.labels}
    return _with("max-iou-strict-positive", **{"assign.max_iou": assign})


def giou_loss_additive_eps(eps: float = 1e-7) -> Adapter:
    """A GIoU loss that adds ``eps`` to its union and enclosing area where the profile's convention adds nothing
    (DETR's ``loss_giou``): torchvision's 1e-7 under a DETR profile. Other profiles are computed right."""
    from components.contract import COMPONENTS, profile_convention
    from oracle import losses

    def loss(inputs, config, profile):
        convention = profile_convention(profile, config["convention"])
        if convention.eps_mode != "none":
            return COMPONENTS["losses.giou_loss"].call(inputs, config, profile)
        kwargs = {k: v for k, v in config.items() if k != "convention"}
        return {"loss": losses.giou_loss(inputs["pred"], inputs["target"], **kwargs,
                                         convention=dataclasses.replace(convention, eps_mode="add", eps=eps))}
    return _with(f"giou-loss-additive-eps-{eps:g}", **{"losses.giou_loss": loss})


def giou_loss_additive_eps_1e9() -> Adapter:
    """:func:`giou_loss_additive_eps` with an eps of 1e-9."""
    return giou_loss_additive_eps(1e-9)


def hungarian_without_label_check() -> Adapter:
    """A matcher that does not check its labels: a label beyond the classes takes the last logit column's cost
    (under a softmax cost, the no-object class's), as transformers' HungarianMatcher does for label num_labels."""
    def matcher(inputs, config, profile):
        columns = inputs["pred_logits"].shape[-1]
        num_classes = columns - (get_profile(profile).matcher.class_cost == "softmax")
        targets = [{**t, "labels": t["labels"].clamp(max=num_classes - 1)} for t in inputs["targets"]]
        return COMPONENTS["assign.hungarian"].call({**inputs, "targets": targets}, config, profile)
    return _with("hungarian-without-label-check", **{"assign.hungarian": matcher})

#: IDEA-Research/DINO models/dino/dino.py (SetCriterion.forward, faa8520f lines 533-541 and 577-586): without a
#: denoising part (``dn_meta`` None: eval, ``dn_number`` 0) these terms are returned as constants 0 with suffix
#: ``_dn``, and ``_dn_{i}`` for each aux layer i.
_DINO_ZERO_DN_TERMS = ("loss_bbox", "loss_giou", "loss_ce", "loss_xy", "loss_hw", "cardinality_error")


def _with_dn_keys(name: str, value) -> Adapter:
    """The reference's set criterion plus DINO's ``_dn`` / ``_dn_{i}`` keys where it gives none (an input without
    ``dn_meta``), each ``value(out, term) -> tensor``."""
    def criterion(inputs, config, profile):
        out = call_set_criterion(inputs, config, profile)
        if any(k.endswith("_dn") for k in out["losses"]):
            return out
        layers = len(inputs["outputs"].get("aux_outputs") or [])
        suffixes = ["_dn"] + [f"_dn_{i}" for i in range(layers)]
        extra = {f"{term}{suffix}": value(out, term) for suffix in suffixes for term in _DINO_ZERO_DN_TERMS}
        return {**out, "losses": {**out["losses"], **extra}}
    return _with(name, **{"criteria.set_criterion": criterion})


def dino_zero_dn_keys() -> Adapter:
    """The reference's set criterion plus DINO's zero-valued denoising keys when the batch has no denoising part:
    right under the ``dino`` profile (the contract accepts them there), unexpected names under any other."""
    return _with_dn_keys("dino-zero-dn-keys", lambda out, term: torch.zeros_like(out["total"]))


def dino_nonzero_dn_keys() -> Adapter:
    """DINO's denoising keys without a denoising part, but ``loss_ce_dn`` (and ``loss_ce_dn_{i}``) the last layer's
    ``loss_ce`` (the total under ultralytics keys) instead of 0: a port that computes the denoising class loss on the
    matching queries."""
    def value(out, term):
        if term != "loss_ce":
            return torch.zeros_like(out["total"])
        return out["losses"].get("loss_ce", out["total"])
    return _with_dn_keys("dino-nonzero-dn-keys", value)


def criterion_drops_encoder_terms() -> Adapter:
    """The reference's set criterion under transformers' Deformable-DETR profile, but blind to the two-stage encoder
    proposals: it computes the loss without ``enc_outputs`` (no ``_enc`` terms, no gradient to the proposals), as
    transformers' DeformableDetrForObjectDetection(two_stage=True) trains."""
    def criterion(inputs, config, profile):
        outputs = {k: v for k, v in inputs["outputs"].items() if k != "enc_outputs"}
        return call_set_criterion({**inputs, "outputs": outputs}, config, profile)
    return Adapter(name="criterion-drops-encoder-terms", version="0-faulty",
                   components={"criteria.set_criterion": criterion}, profiles=frozenset({"hf_deformable_detr"}))


def smooth_l1_beta_inverted() -> Adapter:
    """Smooth L1 with ``1 / beta`` for ``beta`` (the same at beta 1, mmdet's default)."""
    def loss(inputs, config, profile):
        beta = config.get("beta", 1.0)
        return COMPONENTS["losses.smooth_l1_loss"].call(inputs, {**config, "beta": 1.0 / beta if beta else 0.0},
                                                        profile)
    return _with("smooth-l1-beta-inverted", **{"losses.smooth_l1_loss": loss})


def dfl_without_clamp() -> Adapter:
    """A distribution focal loss that does not clamp its targets to ``reg_max - 1 - 0.01`` (mmdet's per-side term):
    a target at or beyond the last bin splits onto a bin that does not exist (here: its weight is dropped)."""
    def loss(inputs, config, profile):
        from oracle import losses
        x, t = inputs["logits"], inputs["targets"]
        last = x.shape[-1] - 1
        left = t.floor().clamp(0, last)
        w_left, w_right = left + 1 - t, t - left
        logp = torch.log_softmax(x, -1)
        take = lambda i: logp.gather(-1, i.long().clamp(max=last)[..., None])[..., 0]  # noqa: E731
        right_ok = (left + 1 <= last).to(x.dtype)
        per_side = -(w_left * take(left) + w_right * right_ok * take(left + 1))
        return {"loss": losses.reduce_loss(per_side.mean(-1), reduction=config.get("reduction", "mean"))}
    return _with("dfl-without-clamp", **{"losses.distribution_focal_loss": loss})


def anchor_offsets_hardcoded() -> Adapter:
    """Grid anchors and anchor points with the cell-centre offset fixed at 0.5 whatever the config says (mmdet's
    AnchorGenerator defaults to 0, YOLOv8's make_anchors to 0.5)."""
    grid, points = COMPONENTS["anchors.grid"].call, COMPONENTS["anchors.points"].call
    return _with("anchor-offsets-hardcoded",
                 **{"anchors.grid": lambda inputs, config, profile: grid(inputs, {**config, "center_offset": 0.5},
                                                                         profile),
                    "anchors.points": lambda inputs, config, profile: points(inputs, {**config, "offset": 0.5},
                                                                             profile)})

def task_aligned_topk_off_by_one() -> Adapter:
    """The task-aligned assigner with a top-k one short of its convention's (each GT's k-th anchor dropped)."""
    from oracle import conventions as conv
    from oracle.assign.task_aligned import task_aligned_assign

    def assign(inputs, config, profile):
        tal = conv.named(config["convention"], conv.TaskAlignedConvention)
        a = task_aligned_assign(*(inputs[k] for k in ("pd_scores", "pd_bboxes", "anchor_points", "gt_labels",
                                                      "gt_bboxes", "mask_gt")),
                                convention=dataclasses.replace(tal, topk=tal.topk - 1),
                                stride_val=config.get("stride_val"))
        return {"target_labels": a.target_labels, "target_bboxes": a.target_bboxes, "target_scores": a.target_scores,
                "fg_mask": a.fg_mask, "target_gt_idx": a.target_gt_idx}
    return _with("task-aligned-topk-off-by-one", **{"assign.task_aligned": assign})


def _swapped_dfl(dfl):
    """A distribution focal loss with the two bins' weights swapped: target ``t`` between bins ``l`` and ``l + 1``
    weighs bin ``l`` by ``t - l`` (instead of ``l + 1 - t``), i.e. the correct loss at ``2 l + 1 - t``."""
    def swapped(logits, targets, *args, **kwargs):
        left = torch.floor(targets)
        return dfl(logits, 2 * left + 1 - targets, *args, **kwargs)
    return swapped


def dfl_bins_swapped() -> Adapter:
    """The YOLOv8 losses with the DFL's left and right bin weights swapped."""
    from oracle.criteria import yolov8

    def patched(name):
        def call(inputs, config, profile):
            original = yolov8.L.distribution_focal_loss
            yolov8.L.distribution_focal_loss = _swapped_dfl(original)
            try:
                return COMPONENTS[name].call(inputs, config, profile)
            finally:
                yolov8.L.distribution_focal_loss = original
        return call
    return _with("dfl-bins-swapped", **{n: patched(n) for n in ("criteria.yolov8_detection",
                                                                 "criteria.yolov8_segmentation")})


def seg_empty_per_target_masks_raise() -> Adapter:
    """The segmentation loss raising for a batch without instances whose per-target masks (overlap_mask off) are
    larger than the prototypes: ultralytics 8.0.35 resized the ``[0, H, W]`` masks with ``F.interpolate``, which
    rejects an empty batch."""
    def call(inputs, config, profile):
        masks, proto = inputs["batch"]["masks"], inputs["proto"]
        if not config.get("overlap_mask", True) and masks.shape[0] == 0 and masks.shape[-2:] != proto.shape[-2:]:
            torch.nn.functional.interpolate(masks[None], proto.shape[-2:], mode="nearest")  # raises on [1, 0, H, W]
        return COMPONENTS["criteria.yolov8_segmentation"].call(inputs, config, profile)
    return _with("seg-empty-per-target-masks-raise", **{"criteria.yolov8_segmentation": call})


def seg_proto_sum_times_zero() -> Adapter:
    """The segmentation loss of a batch without instances adding ``proto.sum() * 0`` in the run's dtype, to keep the
    prototypes in the graph (ultralytics 8.0.57): large prototypes overflow a float16 sum to inf, and inf * 0 is
    NaN."""
    def call(inputs, config, profile):
        out = COMPONENTS["criteria.yolov8_segmentation"].call(inputs, config, profile)
        if inputs["batch"]["masks"].shape[0] == 0 or not bool(out["fg_mask"].any()):
            keep = (inputs["proto"].sum() * 0).to(out["total"].dtype)
            out = {**out, "loss": out["loss"] + keep, "total": out["total"] + keep}
        return out
    return _with("seg-proto-sum-times-zero", **{"criteria.yolov8_segmentation": call})


# --------------------------------------------------------------------------- dense heads: a constant for a config field

def _hardcoded_config(name: str, rewrite, *components: str) -> Adapter:
    """The reference's ``components`` called with ``rewrite(config)``: the port that writes a default where the
    model's config has a number."""
    def rewritten(call):
        return lambda inputs, config, profile: call(inputs, rewrite(dict(config)), profile)
    return _with(name, **{c: rewritten(COMPONENTS[c].call) for c in components})


def coder_stds_hardcoded() -> Adapter:
    """Delta coders whose stds are fixed at (0.1, 0.1, 0.2, 0.2) (Faster R-CNN's RoI head, torchvision's
    ``BoxCoder((10, 10, 5, 5))``), whatever the config's ``stds``."""
    return _hardcoded_config("coder-stds-hardcoded", lambda c: {**c, "stds": [0.1, 0.1, 0.2, 0.2]},
                             "coders.delta_xywh_encode", "coders.delta_xywh_decode")


def task_aligned_eps_hardcoded() -> Adapter:
    """A task-aligned assigner whose score-normalisation eps is ultralytics' default 1e-9, whatever the config's
    ``norm_eps``."""
    def rewrite(c):
        overrides = {k: v for k, v in (c.get("convention_overrides") or {}).items() if k != "norm_eps"}
        return {**c, "convention_overrides": overrides}
    return _hardcoded_config("task-aligned-eps-hardcoded", rewrite, "assign.task_aligned")


def task_aligned_alpha_hardcoded() -> Adapter:
    """A task-aligned assigner with ``v8DetectionLoss``'s alpha 0.5 whatever the config's ``alpha`` (the adapter that
    builds ``TaskAlignedAssigner(alpha=0.5)`` as the loss does)."""
    def rewrite(c):
        return {**c, "convention_overrides": {**(c.get("convention_overrides") or {}), "alpha": 0.5}}
    return _hardcoded_config("task-aligned-alpha-hardcoded", rewrite, "assign.task_aligned")


def yolov8_box_gain_hardcoded() -> Adapter:
    """A YOLOv8 detection loss whose box gain is cfg/default.yaml's 7.5, whatever the config's ``gains``."""
    return _hardcoded_config("yolov8-box-gain-hardcoded",
                             lambda c: {**c, "gains": {**(c.get("gains") or {}), "box_gain": 7.5}},
                             "criteria.yolov8_detection", "criteria.yolov8_segmentation")


def focal_cost_probability_clamp() -> Adapter:
    """A focal-cost matcher that clamps its probabilities to ``[1e-4, 1 - 1e-4]`` before the cost, as CenterNet's
    ``_sigmoid`` (xingyizhou/CenterNet src/lib/models/utils.py, copied into many heads) does "for stability": every
    logit beyond ``log(9999)`` (about 9.21) costs as that one. Softmax costs are the reference's."""
    bound = math.log((1 - 1e-4) / 1e-4)

    def matcher(inputs, config, profile):
        if matcher_convention(config, profile).class_cost == "focal":
            inputs = {**inputs, "pred_logits": inputs["pred_logits"].clamp(-bound, bound)}
        return COMPONENTS["assign.hungarian"].call(inputs, config, profile)
    return _with("focal-cost-probability-clamp", **{"assign.hungarian": matcher})


def _non_finite_policy(name: str, policy: str) -> Adapter:
    """The reference matcher under the non-finite policy ``policy`` (MatcherConvention.non_finite_cost) whatever the
    profile's."""
    def matcher(inputs, config, profile):
        if all(bool(torch.isfinite(inputs[k]).all()) for k in ("pred_logits", "pred_boxes")):
            return COMPONENTS["assign.hungarian"].call(inputs, config, profile)
        m = dataclasses.replace(matcher_convention(config, profile), non_finite_cost=policy)
        return {"indices": _per_image(inputs, config, profile, linear_sum_assignment, matcher=m)["indices"]}
    return _with(name, **{"assign.hungarian": matcher})


def matcher_raises_on_non_finite() -> Adapter:
    """A matcher that hands a NaN cost to scipy, which raises "matrix contains invalid numeric entries": transformers'
    HungarianMatcher before it replaced non-finite costs by finfo.max (loss/loss_for_object_detection.py)."""
    def matcher(inputs, config, profile):
        if not all(bool(torch.isfinite(inputs[k]).all()) for k in ("pred_logits", "pred_boxes")):
            linear_sum_assignment(np.full((1, 1), np.nan))
        return COMPONENTS["assign.hungarian"].call(inputs, config, profile)
    return _with("matcher-raises-on-non-finite", **{"assign.hungarian": matcher})


def non_finite_cost_zero() -> Adapter:
    """A matcher that replaces NaN and ±inf costs by 0 (ultralytics' HungarianMatcher: ``C[C.isnan() | C.isinf()] =
    0.0``) where the profile replaces them by finfo.max: a poisoned entry is matched first wherever the finite costs
    are positive."""
    return _non_finite_policy("non-finite-cost-zero", "zero")
