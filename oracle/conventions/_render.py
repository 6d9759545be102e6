"""The markdown table of every profile's conventions that docs/conventions.md embeds."""

from __future__ import annotations

from .iou import IoUConvention
from .profiles import PROFILES, Profile


def _iou_summary(c: IoUConvention) -> str:
    parts = ["no eps" if c.eps_mode == "none" else f"{c.eps_mode} {c.eps:g}"]
    if c.units != "any":
        parts.append(c.units)
    for label, value in (("diag", c.diag_eps), ("area h", c.area_height_eps), ("aspect h", c.aspect_height_eps),
                         ("alpha", c.ciou_alpha_eps)):
        if value:
            parts.append(f"{label} +{value:g}")
    if c.ciou_alpha_min_iou is not None:
        parts.append(f"alpha if iou>{c.ciou_alpha_min_iou:g}")
    if c.ciou_clamp:
        parts.append("clamp [-1,1]")
    return ", ".join(parts)


def _criterion_summary(p: Profile) -> str:
    if p.criterion is not None:
        c = p.criterion
        parts = [f"{c.classification}" + (f" eos {c.eos_coef:g}" if c.classification == "softmax" else ""),
                 f"weights ({c.weight_ce:g}, {c.weight_bbox:g}, {c.weight_giou:g})"]
        if c.keys == "ultralytics":  # its keys have no cardinality_error or class_error
            parts += [f"α{c.focal_alpha:g} γ{c.focal_gamma:g}", f"num_boxes {c.num_boxes}",
                      "ultralytics keys (gained, *_aux summed)"]
        else:
            parts.append(f"cardinality {c.cardinality}")
            if not c.class_error:
                parts.append("no class_error")
        if c.box_diagnostics:
            parts.append("loss_xy/loss_hw")
        return ", ".join(parts)
    if p.mmdet_head is not None:
        h = p.mmdet_head
        return (f"mmdet head: {h.classification}, bg {h.bg_cls_weight:g}, "
                f"weights ({h.loss_weight_cls:g}, {h.loss_weight_bbox:g}, {h.loss_weight_iou:g})")
    return "—"


def profiles_markdown() -> str:
    """A markdown table of every profile's conventions (docs/conventions.md embeds it)."""
    rows = ["| profile | box overlaps | IoU losses | matcher class cost (w_class, w_bbox, w_giou) | avg_factor eps | "
            "background weight | set criterion |",
            "|---|---|---|---|---|---|---|"]
    for p in PROFILES.values():
        m = p.matcher
        if m is None:
            matcher = "—"
        else:
            kind = ("softmax" if m.class_cost == "softmax"
                    else f"focal α{m.focal_alpha:g} γ{m.focal_gamma:g} eps {m.focal_eps:g}")
            matcher = f"{kind} ({m.weight_class:g}, {m.weight_bbox:g}, {m.weight_giou:g})"
            if m.giou_cost_offset:
                matcher += f", {m.giou_cost_offset:g} − GIoU"
        bg = "—" if p.background_weight is None else f"{p.background_weight:g}"
        rows.append(f"| `{p.name}` | {_iou_summary(p.box_iou)} | {_iou_summary(p.iou_loss)} | {matcher} | "
                    f"{p.avg_factor_eps:g} | {bg} | {_criterion_summary(p)} |")
    return "\n".join(rows) + "\n"
