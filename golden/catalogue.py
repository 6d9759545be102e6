"""The case catalogue: which golden cases exist, how their inputs are made, and how the reference runs them.

A :class:`Case` records its component, profile (the conventions), config and seed; its inputs come
from ``numpy.random.Generator(PCG64(seed))`` or are written out (edge cases, tagged
``edge:<what>``). A *component* is a function ``(inputs, case) -> outputs`` that calls the
reference; outputs include the gradients of losses with respect to their float inputs
(``grad.<input path>``), since gradients are part of conformance (DESIGN §6).

Components: ``boxes.convert``, ``boxes.area``, ``boxes.overlap`` (iou, iof, giou, diou, ciou),
``losses.<name>`` for every loss primitive, ``assign.hungarian``, ``criteria.set_criterion``,
``criteria.cdn`` and ``criteria.mmdet_detr_head``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from oracle import boxes as B
from oracle import conventions as conv
from oracle import losses as L
from oracle.assign.hungarian import hungarian_match
from oracle.criteria import CdnDraws, MMDetDETRHeadLoss, SetCriterion, SetCriterionConfig, prepare_for_cdn
from oracle.criteria._inputs import layer_arg, targets_arg

Inputs = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """One golden case. ``build(rng)`` makes its inputs (nested dicts/lists of tensors)."""

    name: str
    component: str
    profile: str
    config: Mapping[str, Any]
    seed: int
    tags: tuple[str, ...]
    build: Callable[[np.random.Generator], Inputs] = field(compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "component": self.component, "profile": self.profile,
                "config": dict(self.config), "seed": self.seed, "tags": list(self.tags)}

    def inputs(self) -> Inputs:
        return self.build(np.random.Generator(np.random.PCG64(self.seed)))

    @property
    def file(self) -> str:
        """Path of the fixture relative to golden/."""
        return f"data/{self.name}.safetensors"


# --------------------------------------------------------------------------- input helpers

def f64(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def i64(x: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.int64).reshape(-1))


def rand_xyxy(rng: np.random.Generator, n: int, *, scale: float = 1.0, min_size: float = 0.02) -> torch.Tensor:
    xy = rng.random((n, 2)) * 0.7 * scale
    wh = (min_size + rng.random((n, 2)) * 0.3) * scale
    return f64(np.concatenate([xy, xy + wh], axis=1))


def rand_cxcywh(rng: np.random.Generator, n: int) -> torch.Tensor:
    return B.convert(rand_xyxy(rng, n), "xyxy", "cxcywh")


def rand_logits(rng: np.random.Generator, shape: tuple[int, ...], scale: float = 2.0) -> torch.Tensor:
    return f64(rng.standard_normal(shape) * scale)


def rand_targets(rng: np.random.Generator, counts: list[int], num_classes: int, *,
                 image_size: tuple[float, float] | None = None, masks: tuple[int, int] | None = None) -> list[dict]:
    out = []
    for n in counts:
        t = {"labels": i64(rng.integers(0, num_classes, n)), "boxes": rand_cxcywh(rng, n).reshape(n, 4)}
        if image_size is not None:
            t["image_size"] = f64(image_size)
        if masks is not None:
            t["masks"] = f64(rng.random((n, *masks)) > 0.5)
        out.append(t)
    return out


def _profile_convention(profile: str, which: str) -> conv.IoUConvention:
    if which.startswith("IOU_"):
        return getattr(conv, which)
    return getattr(conv.get_profile(profile), which)


def _grads(value: torch.Tensor, inputs: Mapping[str, Any], prefix: str = "grad") -> dict[str, Any]:
    """``{grad: {path: d value / d input}}`` for every float input leaf that requires grad."""
    leaves = _float_leaves(inputs)
    tensors = [t for _, t in leaves]
    if not tensors or not value.requires_grad:
        return {}
    grads = torch.autograd.grad(value, tensors, allow_unused=True)
    out: dict[str, Any] = {}
    for (path, t), g in zip(leaves, grads):
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = torch.zeros_like(t) if g is None else g
    return {prefix: out}


def _float_leaves(tree: Any, path: tuple = ()) -> list[tuple[tuple, torch.Tensor]]:
    if isinstance(tree, torch.Tensor):
        return [(path, tree)] if tree.requires_grad else []
    if isinstance(tree, Mapping):
        return [leaf for k, v in tree.items() for leaf in _float_leaves(v, path + (str(k),))]
    if isinstance(tree, (list, tuple)):
        return [leaf for i, v in enumerate(tree) for leaf in _float_leaves(v, path + (str(i),))]
    return []


def _with_grad(inputs: Inputs, *paths: str) -> Inputs:
    """Mark the named top-level float inputs (and every float tensor inside them) as requiring grad."""
    def mark(tree: Any) -> Any:
        if isinstance(tree, torch.Tensor):
            return tree.clone().requires_grad_(True) if tree.dtype == torch.float64 else tree
        if isinstance(tree, Mapping):
            return {k: mark(v) for k, v in tree.items()}
        if isinstance(tree, list):
            return [mark(v) for v in tree]
        return tree
    return {k: (mark(v) if k in paths else v) for k, v in inputs.items()}


# --------------------------------------------------------------------------- components

def run_convert(inputs: Inputs, case: Case) -> dict:
    return {"boxes": B.convert(inputs["boxes"], case.config["src"], case.config["dst"])}


def run_area(inputs: Inputs, case: Case) -> dict:
    return {"area": B.area(inputs["boxes"], case.config["fmt"])}


def run_overlap(inputs: Inputs, case: Case) -> dict:
    c = case.config
    inputs = _with_grad(inputs, "boxes1", "boxes2")
    # Looked up at call time, so that a changed formula (or a test's monkeypatch) reaches every case.
    fn = functools.partial(B.iou, mode="iof") if c["op"] == "iof" else getattr(B, c["op"])
    value = fn(inputs["boxes1"], inputs["boxes2"], aligned=c["aligned"], fmt=c["fmt"],
               convention=_profile_convention(case.profile, c["convention"]))
    return {"value": value, **_grads(value.sum(), inputs)}


_LOSSES: dict[str, tuple[str, ...]] = {
    # oracle.losses function: its positional inputs; other tensor inputs are keyword arguments
    "softmax_cross_entropy": ("logits", "labels"),
    "sigmoid_binary_cross_entropy": ("logits", "targets"),
    "sigmoid_focal_loss": ("logits", "targets"),
    "l1_loss": ("pred", "target"),
    "smooth_l1_loss": ("pred", "target"),
    "giou_loss": ("pred", "target"),
    "diou_loss": ("pred", "target"),
    "ciou_loss": ("pred", "target"),
    "dice_loss": ("logits", "targets"),
}


def run_loss(inputs: Inputs, case: Case) -> dict:
    name = case.component.removeprefix("losses.")
    fn, positional = getattr(L, name), _LOSSES[name]
    kwargs = {k: v for k, v in case.config.items() if k != "convention"}
    if "convention" in case.config:
        kwargs["convention"] = _profile_convention(case.profile, case.config["convention"])
    inputs = _with_grad(inputs, positional[0])
    extra = {k: v for k, v in inputs.items() if k not in positional}
    loss = fn(*(inputs[k] for k in positional), **extra, **kwargs)
    return {"loss": loss, **_grads(loss.sum(), inputs)}


def run_hungarian(inputs: Inputs, case: Case) -> dict:
    matcher = conv.get_profile(case.profile).matcher
    matches = hungarian_match(inputs["pred_logits"], inputs["pred_boxes"], inputs["targets"], convention=matcher)
    return {"indices": [{"pred": m.pred_idx, "gt": m.gt_idx} for m in matches],
            "cost": [m.cost_matrix for m in matches],
            "total_cost": f64([m.total_cost for m in matches])}


def _criterion_layers(outputs: Mapping) -> dict[str, Mapping]:
    layers = {"": outputs}
    layers.update({f"_{i}": a for i, a in enumerate(outputs.get("aux_outputs") or [])})
    for key, suffix in (("enc_outputs", "_enc"), ("interm_outputs", "_interm")):
        if outputs.get(key) is not None:
            layers[suffix] = outputs[key]
    return layers


def run_set_criterion(inputs: Inputs, case: Case) -> dict:
    crit = SetCriterion(SetCriterionConfig.from_profile(case.profile, num_classes=case.config["num_classes"]))
    inputs = _with_grad(inputs, "outputs")
    outputs = dict(inputs["outputs"])
    if "dn_meta" in outputs:
        outputs["dn_meta"] = {k: int(v) for k, v in outputs["dn_meta"].items()}
    world = inputs.get("world_num_boxes")
    world = None if world is None else world.tolist()
    # Record the matching of every matched layer and hand the same matching to the criterion.
    indices = {}
    for suffix, raw in _criterion_layers(outputs).items():
        layer = layer_arg("outputs", raw, num_logits=crit.config.num_logits)
        targets = inputs["targets"]
        if suffix == "_enc":
            targets = [{**t, "labels": torch.zeros_like(t["labels"])} for t in targets]
        indices[suffix] = crit.match(layer, targets_arg(targets, len(targets), crit.config.num_classes))
    losses = crit(outputs, inputs["targets"], indices=indices, world_num_boxes=world)
    total = crit.total(losses)
    return {"losses": losses, "total": total,
            "indices": {("last" if s == "" else s.lstrip("_")): [{"pred": p, "gt": g} for p, g in idx]
                        for s, idx in indices.items()},
            **_grads(total, {"outputs": inputs["outputs"]})}


def run_cdn(inputs: Inputs, case: Case) -> dict:
    c = case.config
    d = inputs["draws"]
    q = prepare_for_cdn(inputs["targets"], dn_number=c["dn_number"], label_noise_ratio=c["label_noise_ratio"],
                        box_noise_scale=c["box_noise_scale"], num_classes=c["num_classes"],
                        num_queries=c["num_queries"],
                        draws=CdnDraws(d["label_p"], d["relabel"], d["box_sign"], d["box_part"]))
    return {"labels": q.labels, "boxes": q.boxes, "boxes_unact": q.boxes_unact, "valid": q.valid,
            "attn_mask": q.attn_mask, "dn_meta": {k: torch.tensor(v) for k, v in q.dn_meta.items()}}


_MMDET_HEADS = {"detr": conv.MMDET_DETR_HEAD, "deformable_detr": conv.MMDET_DEFORMABLE_DETR_HEAD,
                "dino": conv.MMDET_DINO_HEAD}


def run_mmdet_head(inputs: Inputs, case: Case) -> dict:
    head = MMDetDETRHeadLoss(_MMDET_HEADS[case.config["head"]], num_classes=case.config["num_classes"])
    keys = ("all_cls_scores", "all_bbox_preds", "enc_cls_scores", "enc_bbox_preds", "dn_cls_scores", "dn_bbox_preds")
    inputs = _with_grad(inputs, *keys)
    kwargs = {k: inputs[k] for k in keys[2:] if k in inputs}
    if "dn_meta" in inputs:
        kwargs["dn_meta"] = {k: int(v) for k, v in inputs["dn_meta"].items()}
    losses = head(inputs["all_cls_scores"], inputs["all_bbox_preds"], inputs["targets"], **kwargs)
    total = head.total(losses)
    # mmdet keys contain dots ("d0.loss_cls"); store them with "/" so that names stay flat.
    return {"losses": {k.replace(".", "/"): v for k, v in losses.items()}, "total": total,
            **_grads(total, {k: inputs[k] for k in keys if k in inputs})}


COMPONENTS: dict[str, Callable[[Inputs, Case], dict]] = {
    "boxes.convert": run_convert,
    "boxes.area": run_area,
    "boxes.overlap": run_overlap,
    **{f"losses.{name}": run_loss for name in _LOSSES},
    "assign.hungarian": run_hungarian,
    "criteria.set_criterion": run_set_criterion,
    "criteria.cdn": run_cdn,
    "criteria.mmdet_detr_head": run_mmdet_head,
}


def run_case(case: Case) -> tuple[Inputs, dict]:
    """The case's inputs and the reference's outputs for them."""
    inputs = case.inputs()
    return inputs, COMPONENTS[case.component](inputs, case)


# --------------------------------------------------------------------------- the cases

def _boxes_cases() -> list[Case]:
    cases = []
    fmts = ("xyxy", "cxcywh", "xywh")
    for i, (src, dst) in enumerate((s, d) for s in fmts for d in fmts if s != d):
        cases.append(Case(f"boxes.convert/{src}-to-{dst}", "boxes.convert", "detr", {"src": src, "dst": dst}, 100 + i,
                          ("random",), lambda rng, s=src: {"boxes": B.convert(rand_xyxy(rng, 6), "xyxy", s)}))
    cases.append(Case("boxes.convert/edge-zero-area-and-empty-batch", "boxes.convert", "detr",
                      {"src": "cxcywh", "dst": "xyxy"}, 0, ("edge:zero-area-boxes",),
                      lambda rng: {"boxes": f64([[0.5, 0.5, 0.0, 0.0], [0.2, 0.3, 0.0, 0.4]])}))
    cases.append(Case("boxes.area/random-xyxy", "boxes.area", "detr", {"fmt": "xyxy"}, 110, ("random",),
                      lambda rng: {"boxes": rand_xyxy(rng, 8, scale=640.0)}))
    cases.append(Case("boxes.area/edge-zero-area", "boxes.area", "detr", {"fmt": "xyxy"}, 0, ("edge:zero-area-boxes",),
                      lambda rng: {"boxes": f64([[1.0, 1.0, 1.0, 3.0], [2.0, 2.0, 5.0, 2.0], [0.0, 0.0, 0.0, 0.0]])}))

    profiles = {"detr": "box_iou", "dino": "box_iou", "mmdet": "box_iou", "torchvision": "box_iou",
                "ultralytics": "box_iou"}
    ops_by_profile = {"detr": ("iou", "giou"), "dino": ("iou", "giou"), "mmdet": ("iou", "iof", "giou"),
                      "torchvision": ("iou", "giou", "diou", "ciou"), "ultralytics": ("iou", "giou", "diou", "ciou")}
    seed = 200
    for profile, which in profiles.items():
        for op in ops_by_profile[profile]:
            seed += 1
            cases.append(Case(f"boxes.overlap/{op}-{profile}-pairwise", "boxes.overlap", profile,
                              {"op": op, "aligned": False, "fmt": "xyxy", "convention": which}, seed, ("random",),
                              lambda rng: {"boxes1": rand_xyxy(rng, 5), "boxes2": rand_xyxy(rng, 4)}))
    for op in ("giou", "diou", "ciou"):
        seed += 1
        cases.append(Case(f"boxes.overlap/{op}-torchvision-loss-aligned-pixels", "boxes.overlap", "torchvision",
                          {"op": op, "aligned": True, "fmt": "xyxy", "convention": "iou_loss"}, seed, ("random",),
                          lambda rng: {"boxes1": rand_xyxy(rng, 7, scale=800.0), "boxes2": rand_xyxy(rng, 7, scale=800.0)}))
    cases.append(Case("boxes.overlap/ciou-mmdet-loss-aligned", "boxes.overlap", "mmdet",
                      {"op": "ciou", "aligned": True, "fmt": "xyxy", "convention": "IOU_MMDET_CIOU_LOSS"}, 230,
                      ("random",), lambda rng: {"boxes1": rand_xyxy(rng, 6), "boxes2": rand_xyxy(rng, 6)}))
    cases.append(Case("boxes.overlap/giou-detr-cxcywh-realistic", "boxes.overlap", "detr",
                      {"op": "giou", "aligned": False, "fmt": "cxcywh", "convention": "box_iou"}, 231, ("random", "size:realistic"),
                      lambda rng: {"boxes1": rand_cxcywh(rng, 300), "boxes2": rand_cxcywh(rng, 50)}))

    identical = lambda rng: {"boxes1": f64([[0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.4, 0.9]]),  # noqa: E731
                             "boxes2": f64([[0.1, 0.2, 0.5, 0.6], [0.3, 0.3, 0.4, 0.9]])}
    for op in ("iou", "giou", "diou", "ciou"):
        cases.append(Case(f"boxes.overlap/edge-identical-{op}", "boxes.overlap", "torchvision",
                          {"op": op, "aligned": False, "fmt": "xyxy", "convention": "box_iou"}, 0,
                          ("edge:identical-boxes",), identical))
    zero_area = lambda rng: {"boxes1": f64([[0.3, 0.3, 0.3, 0.3], [0.1, 0.1, 0.4, 0.1]]),  # noqa: E731
                             "boxes2": f64([[0.3, 0.3, 0.3, 0.3], [0.2, 0.0, 0.5, 0.5]])}
    for profile in ("dino", "mmdet", "ultralytics"):
        cases.append(Case(f"boxes.overlap/edge-zero-area-giou-{profile}", "boxes.overlap", profile,
                          {"op": "giou", "aligned": False, "fmt": "xyxy", "convention": "box_iou"}, 0,
                          ("edge:zero-area-boxes",), zero_area))
    cases.append(Case("boxes.overlap/edge-ciou-at-iou-threshold-mmdet", "boxes.overlap", "mmdet",
                      {"op": "ciou", "aligned": True, "fmt": "xyxy", "convention": "IOU_MMDET_CIOU_LOSS"}, 0,
                      ("edge:iou-at-threshold",),
                      lambda rng: {"boxes1": f64([[0.0, 0.0, 4.0, 2.0], [0.0, 0.0, 4.0, 2.0]]),
                                   "boxes2": f64([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.25, 2.0]])}))
    cases.append(Case("boxes.overlap/edge-disjoint-and-nested", "boxes.overlap", "detr",
                      {"op": "giou", "aligned": False, "fmt": "xyxy", "convention": "box_iou"}, 0,
                      ("edge:disjoint-boxes", "edge:nested-boxes"),
                      lambda rng: {"boxes1": f64([[0.0, 0.0, 0.1, 0.1], [0.2, 0.2, 0.8, 0.8]]),
                                   "boxes2": f64([[0.9, 0.9, 1.0, 1.0], [0.3, 0.3, 0.4, 0.5]])}))
    return cases


def _loss_cases() -> list[Case]:
    cases = []
    eps = conv.FLT_EPS

    def ce(rng, n=6, c=5, ignore=False):
        labels = rng.integers(0, c, n)
        if ignore:
            labels[::3] = -100
        return {"logits": rand_logits(rng, (n, c)), "labels": i64(labels), "class_weight": f64(rng.random(c) + 0.1)}
    cases += [
        Case("losses.softmax_cross_entropy/random-class-weight-mean", "losses.softmax_cross_entropy", "detr",
             {"reduction": "mean"}, 300, ("random",), ce),
        Case("losses.softmax_cross_entropy/random-ignore-index-avg-factor-mmdet", "losses.softmax_cross_entropy", "mmdet",
             {"reduction": "mean", "ignore_index": -100, "avg_factor": 3.0, "avg_factor_eps": eps}, 301, ("random",),
             lambda rng: ce(rng, ignore=True)),
        Case("losses.softmax_cross_entropy/edge-saturated-logits", "losses.softmax_cross_entropy", "detr",
             {"reduction": "none"}, 0, ("edge:saturated-logits",),
             lambda rng: {"logits": f64([[30.0, -30.0, 0.0], [-30.0, -30.0, 30.0], [800.0, -800.0, 0.0]]),
                          "labels": i64([1, 2, 0])}),
        Case("losses.sigmoid_binary_cross_entropy/random-pos-weight", "losses.sigmoid_binary_cross_entropy", "mmdet",
             {"reduction": "sum"}, 310, ("random",),
             lambda rng: {"logits": rand_logits(rng, (4, 3)), "targets": f64(rng.random((4, 3))),
                          "pos_weight": f64(rng.random(3) * 2)}),
        Case("losses.sigmoid_binary_cross_entropy/edge-saturated-logits", "losses.sigmoid_binary_cross_entropy",
             "mmdet", {"reduction": "none"}, 0, ("edge:saturated-logits",),
             lambda rng: {"logits": f64([30.0, -30.0, 800.0, -800.0]), "targets": f64([0.0, 1.0, 0.0, 1.0])}),
    ]
    for i, (alpha, gamma, reduction, profile) in enumerate([(0.25, 2.0, "sum", "dino"), (None, 2.0, "mean", "torchvision"),
                                                            (0.5, 1.5, "none", "ultralytics"), (0.25, 0.0, "sum", "detr")]):
        cases.append(Case(f"losses.sigmoid_focal_loss/random-alpha{alpha}-gamma{gamma}-{reduction}",
                          "losses.sigmoid_focal_loss", profile, {"alpha": alpha, "gamma": gamma, "reduction": reduction},
                          320 + i, ("random",),
                          lambda rng: {"logits": rand_logits(rng, (5, 4)), "targets": f64(rng.random((5, 4)) > 0.7)}))
    cases += [
        Case("losses.sigmoid_focal_loss/soft-targets-weight-avg-factor-mmdet", "losses.sigmoid_focal_loss", "mmdet",
             {"alpha": 0.25, "gamma": 2.0, "reduction": "mean", "avg_factor": 4.0, "avg_factor_eps": eps}, 330,
             ("random",), lambda rng: {"logits": rand_logits(rng, (6, 3)), "targets": f64(rng.random((6, 3))),
                                       "weight": f64(rng.random((6, 1)))}),
        Case("losses.sigmoid_focal_loss/edge-saturated-logits", "losses.sigmoid_focal_loss", "dino",
             {"alpha": 0.25, "gamma": 2.0, "reduction": "none"}, 0, ("edge:saturated-logits",),
             lambda rng: {"logits": f64([30.0, -30.0, 16.7, 20.0, -90.0]), "targets": f64([0.0, 1.0, 0.0, 0.0, 1.0])}),
        Case("losses.sigmoid_focal_loss/random-realistic-detr-size", "losses.sigmoid_focal_loss", "dino",
             {"alpha": 0.25, "gamma": 2.0, "reduction": "mean", "avg_factor": 20.0}, 331, ("random", "size:realistic"),
             lambda rng: {"logits": rand_logits(rng, (2, 300, 91)), "targets": f64(rng.random((2, 300, 91)) > 0.999)}),
        Case("losses.l1_loss/random-weight-avg-factor", "losses.l1_loss", "mmdet",
             {"reduction": "mean", "avg_factor": 2.0, "avg_factor_eps": eps}, 340, ("random",),
             lambda rng: {"pred": f64(rng.random((3, 4))), "target": f64(rng.random((3, 4))),
                          "weight": f64(rng.random((3, 4)) > 0.3)}),
        Case("losses.smooth_l1_loss/random-beta", "losses.smooth_l1_loss", "mmdet", {"beta": 0.11, "reduction": "sum"},
             341, ("random",), lambda rng: {"pred": f64(rng.random((5, 4))), "target": f64(rng.random((5, 4)))}),
        Case("losses.smooth_l1_loss/edge-beta-zero-and-boundary", "losses.smooth_l1_loss", "torchvision",
             {"beta": 0.0, "reduction": "none"}, 0, ("edge:beta-zero",),
             lambda rng: {"pred": f64([0.0, 1.0, 0.5]), "target": f64([0.0, 0.5, 1.5])}),
        Case("losses.smooth_l1_loss/edge-at-beta", "losses.smooth_l1_loss", "mmdet", {"beta": 1.0, "reduction": "none"},
             0, ("edge:at-threshold",), lambda rng: {"pred": f64([0.0, 1.0, 2.0]), "target": f64([1.0, 1.0, 0.0])}),
    ]
    for i, (name, profile, which) in enumerate([("giou_loss", "detr", "iou_loss"), ("giou_loss", "mmdet", "iou_loss"),
                                                ("giou_loss", "torchvision", "iou_loss"),
                                                ("diou_loss", "torchvision", "iou_loss"),
                                                ("ciou_loss", "ultralytics", "iou_loss"),
                                                ("ciou_loss", "mmdet", "IOU_MMDET_CIOU_LOSS")]):
        cases.append(Case(f"losses.{name}/random-{profile}", f"losses.{name}", profile,
                          {"convention": which, "reduction": "mean"}, 350 + i, ("random",),
                          lambda rng: {"pred": rand_xyxy(rng, 6, scale=100.0), "target": rand_xyxy(rng, 6, scale=100.0)}))
    cases.append(Case("losses.l1_loss/edge-empty", "losses.l1_loss", "detr", {"reduction": "mean", "avg_factor": 1.0},
                      0, ("edge:empty-targets",), lambda rng: {"pred": f64(np.zeros((0, 4))), "target": f64(np.zeros((0, 4)))}))
    cases.append(Case("losses.diou_loss/edge-identical-and-concentric", "losses.diou_loss", "torchvision",
                      {"convention": "iou_loss", "reduction": "none"}, 0, ("edge:identical-boxes",),
                      lambda rng: {"pred": f64([[0.1, 0.1, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]]),
                                   "target": f64([[0.1, 0.1, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]])}))
    cases.append(Case("losses.ciou_loss/edge-zero-height-ultralytics", "losses.ciou_loss", "ultralytics",
                      {"convention": "iou_loss", "reduction": "none"}, 0, ("edge:zero-area-boxes",),
                      lambda rng: {"pred": f64([[0.0, 0.0, 1.0, 0.0], [0.2, 0.2, 0.2, 0.2]]),
                                   "target": f64([[0.0, 0.0, 1.0, 1.0], [0.1, 0.1, 0.3, 0.3]])}))
    cases.append(Case("losses.giou_loss/edge-zero-area-torchvision", "losses.giou_loss", "torchvision",
                      {"convention": "iou_loss", "reduction": "none"}, 0, ("edge:zero-area-boxes",),
                      lambda rng: {"pred": f64([[0.2, 0.2, 0.2, 0.2], [0.0, 0.0, 0.5, 0.0]]),
                                   "target": f64([[0.2, 0.2, 0.2, 0.2], [0.1, 0.0, 0.3, 0.4]])}))
    cases += [
        Case("losses.dice_loss/random-detr", "losses.dice_loss", "detr", {"reduction": "mean", "avg_factor": 3.0}, 360,
             ("random",), lambda rng: {"logits": rand_logits(rng, (3, 8, 6)), "targets": f64(rng.random((3, 8, 6)) > 0.5)}),
        Case("losses.dice_loss/edge-empty-masks", "losses.dice_loss", "detr", {"reduction": "none"}, 0,
             ("edge:empty-masks",), lambda rng: {"logits": f64([[-30.0] * 4, [0.0] * 4]), "targets": f64([[0.0] * 4] * 2)}),
    ]
    return cases


def _hungarian_cases() -> list[Case]:
    cases = []

    def problem(rng, b, q, counts, c, softmax, pixel=False):
        k = c + 1 if softmax else c
        return {"pred_logits": rand_logits(rng, (b, q, k)), "pred_boxes": torch.stack([rand_cxcywh(rng, q) for _ in range(b)]),
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
    cases.append(Case("assign.hungarian/edge-saturated-logits", "assign.hungarian", "mmdet", {}, 422,
                      ("edge:saturated-logits",),
                      lambda rng: {**problem(rng, 1, 4, [2], 3, True, True),
                                   "pred_logits": f64([[[30.0, -30, -30, -30], [-30, 30, -30, -30], [-30, -30, -30, 30],
                                                        [30, 30, -30, -30]]])}))

    def tie(rng):
        # Two identical queries and one target: both matchings cost the same; the declared tie-break is
        # what scipy's linear_sum_assignment returns on the float64 matrix.
        return {"pred_logits": f64([[[1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]]),
                "pred_boxes": f64([[[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]]]),
                "targets": [{"labels": i64([0]), "boxes": f64([[0.45, 0.5, 0.2, 0.3]])}]}
    cases.append(Case("assign.hungarian/edge-tie-declared-tie-break", "assign.hungarian", "detr", {}, 0,
                      ("edge:tie",), tie))
    return cases


def _layer(rng, b, q, k):
    return {"pred_logits": rand_logits(rng, (b, q, k)), "pred_boxes": torch.stack([rand_cxcywh(rng, q) for _ in range(b)])}


def _criterion_cases() -> list[Case]:
    cases = []

    def detr_like(rng, profile, b=2, q=6, c=4, layers=3, counts=(3, 1), **extra):
        k = c + 1 if conv.get_profile(profile).criterion.classification == "softmax" else c
        outputs = {**_layer(rng, b, q, k), "aux_outputs": [_layer(rng, b, q, k) for _ in range(layers - 1)]}
        if extra.get("enc"):
            outputs["enc_outputs"] = _layer(rng, b, 2 * q, k)
        if extra.get("interm"):
            outputs["interm_outputs"] = _layer(rng, b, q, k)
        inputs = {"outputs": outputs, "targets": rand_targets(rng, list(counts), c,
                                                              masks=(5, 7) if extra.get("masks") else None)}
        if extra.get("masks"):
            outputs["pred_masks"] = rand_logits(rng, (b, q, 3, 4))
        if extra.get("dn"):
            max_n = max(counts)
            groups = 2
            pad = 2 * groups * max_n
            outputs["dn_meta"] = {"pad_size": torch.tensor(pad), "num_dn_group": torch.tensor(groups)}
            outputs["dn_outputs"] = {**_layer(rng, b, pad, k), "aux_outputs": [_layer(rng, b, pad, k)
                                                                                for _ in range(layers - 1)]}
        if extra.get("world"):
            inputs["world_num_boxes"] = f64(extra["world"])
        return inputs
    specs = [
        ("detr", {}, ("random",)), ("hf_detr", {}, ("random",)), ("deformable_detr", {"enc": True}, ("random",)),
        ("hf_deformable_detr", {}, ("random",)), ("dino", {"interm": True, "dn": True}, ("random",)),
        ("detr", {"masks": True}, ("random", "with:masks")), ("detr", {"world": [4.0, 2.0, 0.0]}, ("random", "with:world")),
    ]
    for i, (profile, extra, tags) in enumerate(specs):
        name = profile + "".join(f"-{k}" for k in extra)
        cases.append(Case(f"criteria.set_criterion/random-{name}", "criteria.set_criterion", profile, {"num_classes": 4},
                          500 + i, tags, lambda rng, p=profile, e=extra: detr_like(rng, p, **e)))
    cases.append(Case("criteria.set_criterion/random-realistic-detr", "criteria.set_criterion", "detr",
                      {"num_classes": 91}, 520, ("random", "size:realistic"),
                      lambda rng: detr_like(rng, "detr", q=100, c=91, layers=3, counts=(20, 7))))
    cases.append(Case("criteria.set_criterion/random-realistic-dino", "criteria.set_criterion", "dino",
                      {"num_classes": 91}, 521, ("random", "size:realistic"),
                      lambda rng: detr_like(rng, "dino", q=100, c=91, layers=2, counts=(12, 5), interm=True, dn=True)))
    for profile in ("detr", "dino"):
        cases.append(Case(f"criteria.set_criterion/edge-empty-targets-{profile}", "criteria.set_criterion", profile,
                          {"num_classes": 4}, 530, ("edge:empty-targets", "edge:all-background"),
                          lambda rng, p=profile: detr_like(rng, p, counts=(0, 0))))
        cases.append(Case(f"criteria.set_criterion/edge-mixed-empty-{profile}", "criteria.set_criterion", profile,
                          {"num_classes": 4}, 531, ("edge:empty-targets",),
                          lambda rng, p=profile: detr_like(rng, p, counts=(0, 2), **({"dn": True} if p == "dino" else {}))))
        cases.append(Case(f"criteria.set_criterion/edge-more-targets-than-queries-{profile}", "criteria.set_criterion",
                          profile, {"num_classes": 4}, 532, ("edge:more-targets-than-queries",),
                          lambda rng, p=profile: detr_like(rng, p, q=2, counts=(5, 1))))
    cases.append(Case("criteria.set_criterion/edge-saturated-logits-deformable", "criteria.set_criterion",
                      "deformable_detr", {"num_classes": 4}, 533, ("edge:saturated-logits",),
                      lambda rng: _saturate(detr_like(rng, "deformable_detr"))))
    cases.append(Case("criteria.set_criterion/edge-single-query-detr", "criteria.set_criterion", "detr",
                      {"num_classes": 4}, 534, ("edge:single-query",), lambda rng: detr_like(rng, "detr", q=1)))

    def cdn(rng, counts, dn_number, num_classes=5, ratio=0.5):
        targets = rand_targets(rng, counts, num_classes)
        g = cdn_groups(counts, dn_number)
        k = 2 * g * sum(counts)
        label_p = rng.random(k)
        chosen = int((label_p < ratio * 0.5).sum())
        return {"targets": targets, "draws": {"label_p": f64(label_p), "relabel": i64(rng.integers(0, num_classes, chosen)),
                                               "box_sign": i64(rng.integers(0, 2, k * 4)).reshape(k, 4),
                                               "box_part": f64(rng.random((k, 4)))}}
    cfg = {"label_noise_ratio": 0.5, "box_noise_scale": 1.0, "num_classes": 5, "num_queries": 6}
    cases += [
        Case("criteria.cdn/random-small", "criteria.cdn", "dino", {**cfg, "dn_number": 3}, 600, ("random",),
             lambda rng: cdn(rng, [3, 1], 3)),
        Case("criteria.cdn/random-dn-number-100", "criteria.cdn", "dino", {**cfg, "dn_number": 100}, 601, ("random",),
             lambda rng: cdn(rng, [7, 4], 100)),
        Case("criteria.cdn/edge-empty-targets", "criteria.cdn", "dino", {**cfg, "dn_number": 100}, 602,
             ("edge:empty-targets",), lambda rng: cdn(rng, [0, 0], 100)),
        Case("criteria.cdn/edge-mixed-empty", "criteria.cdn", "dino", {**cfg, "dn_number": 2}, 603,
             ("edge:empty-targets",), lambda rng: cdn(rng, [0, 2], 2)),
    ]

    def mmdet(rng, head, b=2, q=5, c=4, layers=2, counts=(2, 3), enc=False, dn=False):
        k = c + 1 if head == "detr" else c
        inputs = {"all_cls_scores": rand_logits(rng, (layers, b, q, k)),
                  "all_bbox_preds": torch.stack([torch.stack([rand_cxcywh(rng, q) for _ in range(b)])
                                                 for _ in range(layers)]),
                  "targets": rand_targets(rng, list(counts), c, image_size=(480.0, 640.0))}
        if enc:
            inputs["enc_cls_scores"] = rand_logits(rng, (b, 2 * q, k))
            inputs["enc_bbox_preds"] = torch.stack([rand_cxcywh(rng, 2 * q) for _ in range(b)])
        if dn:
            pad = 2 * 2 * max(counts)
            inputs["dn_meta"] = {"pad_size": torch.tensor(pad), "num_dn_group": torch.tensor(2)}
            inputs["dn_cls_scores"] = rand_logits(rng, (layers, b, pad, k))
            inputs["dn_bbox_preds"] = torch.stack([torch.stack([rand_cxcywh(rng, pad) for _ in range(b)])
                                                   for _ in range(layers)])
        return inputs
    cases += [
        Case("criteria.mmdet_detr_head/random-detr-head", "criteria.mmdet_detr_head", "mmdet",
             {"head": "detr", "num_classes": 4}, 700, ("random",), lambda rng: mmdet(rng, "detr")),
        Case("criteria.mmdet_detr_head/random-deformable-head-enc", "criteria.mmdet_detr_head", "mmdet",
             {"head": "deformable_detr", "num_classes": 4}, 701, ("random",),
             lambda rng: mmdet(rng, "deformable_detr", enc=True)),
        Case("criteria.mmdet_detr_head/random-dino-head-enc-dn", "criteria.mmdet_detr_head", "mmdet",
             {"head": "dino", "num_classes": 4}, 702, ("random",), lambda rng: mmdet(rng, "dino", enc=True, dn=True)),
        Case("criteria.mmdet_detr_head/edge-empty-targets-detr-head", "criteria.mmdet_detr_head", "mmdet",
             {"head": "detr", "num_classes": 4}, 703, ("edge:empty-targets", "edge:all-background"),
             lambda rng: mmdet(rng, "detr", counts=(0, 0))),
        Case("criteria.mmdet_detr_head/edge-more-targets-than-queries-dino", "criteria.mmdet_detr_head", "mmdet",
             {"head": "dino", "num_classes": 4}, 704, ("edge:more-targets-than-queries",),
             lambda rng: mmdet(rng, "dino", q=2, counts=(4, 1), dn=True)),
    ]
    return cases


def cdn_groups(counts: list[int], dn_number: int) -> int:
    from oracle.criteria import cdn_group_count
    return cdn_group_count(max(counts, default=0), dn_number)


def _saturate(inputs: Inputs) -> Inputs:
    outputs = inputs["outputs"]
    outputs["pred_logits"] = torch.where(outputs["pred_logits"] > 0, 30.0, -30.0).to(torch.float64)
    return inputs


@functools.lru_cache(maxsize=1)
def catalogue() -> tuple[Case, ...]:
    """Every case, in a fixed order; names are unique."""
    cases = tuple(_boxes_cases() + _loss_cases() + _hungarian_cases() + _criterion_cases())
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuntimeError(f"duplicate golden case names: {duplicates}")
    unknown = sorted({c.component for c in cases} - set(COMPONENTS))
    if unknown:
        raise RuntimeError(f"cases of unknown components: {unknown}")
    return cases


def components_without_cases() -> list[str]:
    """Components with no random or no edge case (tests assert this is empty)."""
    missing = []
    for component in COMPONENTS:
        tags = [t for c in catalogue() if c.component == component for t in c.tags]
        if "random" not in tags or not any(t.startswith("edge:") for t in tags):
            missing.append(component)
    return missing

