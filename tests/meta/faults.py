"""The registry of faults whose catch rate measures the suite's power (tests/meta/power.py).

A fault is the reference with one plausible bug in one component: :class:`Fault` (name, component, kind, what it
is, factory -> Adapter). Three sources, all listed in :data:`FAULTS`:

- ``handwritten``: the deliberately faulty adapters of tests/meta/faulty_adapters.py that break one component on
  the suite's default run (float32, one process), and the kinks below that a field change cannot express.
- convention mutants, generated: for a component whose reference call reads a convention (a frozen dataclass of
  oracle/conventions, through a profile or a preset, or built from its config), one mutant per field of that
  dataclass -- nested conventions included, enumerated from the dataclass, so a new field gets its mutant --
  with the field changed to another plausible value (:func:`other_values`) for the duration of the call. The
  reference is not edited: the call runs with :data:`oracle.conventions.profiles.PROFILES`, the registry's
  presets and the contract's preset tables patched (:func:`mutated_conventions`), or with the config changed.
- fields without a mutant have their reason in :data:`SKIPPED_FIELDS` (a reason per field, or per type).

``--impl=py:tests.meta.faults:NAME`` runs the suite on fault NAME (this module's ``__getattr__``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from components import contract, dense_calls
from components.contract import COMPONENTS
from conformance.adapters import Adapter
from oracle import anchors as A
from oracle import coders as C
from oracle import conventions as conv
from oracle.conventions import profiles as conv_profiles
from oracle.conventions import registry as conv_registry
from oracle.errors import OracleInputError

from . import faulty_adapters as F


@dataclass(frozen=True)
class Fault:
    """One injected fault: ``component`` is the one it breaks, ``kind`` one of :data:`KINDS`, ``what`` one line."""

    name: str
    component: str
    kind: str
    what: str
    factory: Callable[[], Adapter]
    notes_reads: bool = False  # a convention mutant: its field's first read by a formula goes to READS_FILE
    dtype: str = "float32"  # the run's --dtype: where the fault lives (a float16 overflow shows in float16 only)


KINDS = ("convention field", "threshold/kink", "formula", "gradient", "dtype", "tie-break", "precision", "input check",
         "output names", "dropped feature", "empty shape")


def _with(name: str, component: str, call) -> Adapter:
    components = {n: c.call for n, c in COMPONENTS.items()}
    components[component] = call
    return Adapter(name=name, version="0-faulty", components=components)


# --------------------------------------------------------------------------- convention mutants

#: component -> (source, convention class) it reads: ``registry`` (a profile field or a preset, looked up at call
#: time) or ``config`` (the dataclass is built from the case's config keys, defaults for the absent ones).
CONVENTIONS: dict[str, tuple[tuple[str, type], ...]] = {
    "boxes.overlap": (("registry", conv.IoUConvention),),
    "losses.giou_loss": (("registry", conv.IoUConvention),),
    "losses.diou_loss": (("registry", conv.IoUConvention),),
    "losses.ciou_loss": (("registry", conv.IoUConvention),),
    "assign.hungarian": (("registry", conv.MatcherConvention),),
    "criteria.set_criterion": (("registry", conv.SetCriterionConvention), ("registry", conv.MatcherConvention)),
    "criteria.mmdet_detr_head": (("registry", conv.MMDetDETRHeadConvention),),
    "position.sine": (("registry", conv.SinePEConvention),),
    "assign.max_iou": (("registry", conv.MaxIoUConvention),),
    "assign.task_aligned": (("registry", conv.TaskAlignedConvention),),
    "criteria.yolov8_detection": (("registry", conv.YOLOv8LossConfig),),
    "criteria.yolov8_segmentation": (("registry", conv.YOLOv8LossConfig),),
    "criteria.anchor_head": (("registry", conv.AnchorHeadConfig),),
    "coders.delta_xywh_encode": (("config", C.DeltaXYWHCoder),),
    "coders.delta_xywh_decode": (("config", C.DeltaXYWHCoder),),
    "anchors.grid": (("config", A.AnchorGenerator),),
}

_GEOMETRY = "the case's geometry (per-level sizes given by the case), not a convention a library chooses"
_SAMPLER = ("'random' takes the sampled indices as an input (its RNG cannot be reproduced) and the canonical call "
            "passes none: the other choice is refused (OracleInputError), not another formula")

#: ``(class, field)`` -> why that field has no mutant.
SKIPPED_FIELDS: dict[tuple[type, str], str] = {
    (A.AnchorGenerator, "strides"): _GEOMETRY,
    (A.AnchorGenerator, "ratios"): _GEOMETRY,
    (A.AnchorGenerator, "scales"): _GEOMETRY,
    (A.AnchorGenerator, "base_sizes"): _GEOMETRY,
    (A.AnchorGenerator, "centers"): _GEOMETRY,
    (A.AnchorGenerator, "octave_base_scale"): _GEOMETRY,
    (A.AnchorGenerator, "scales_per_octave"): _GEOMETRY,
    (conv.AnchorHeadConfig, "anchor_generator"): "the anchor generator's fields are mutated under anchors.grid; "
                                                 "the head's anchors are the case's geometry",
    (conv.AnchorHeadConfig, "sampler"): _SAMPLER,
    (conv.SinePEConvention, "num_feats"): "components.contract.call_position takes num_feats from the case's config, "
                                          "and every golden case and generated test gives it",
    (conv.TaskAlignedConvention, "topk2"): "None (off) in every profile and preset; with no plausible value to turn "
                                           "it on to, a wrong topk2 is not observable through any profile",
}


def _field_types(cls: type) -> dict[str, object]:
    return typing.get_type_hints(cls, vars(__import__(cls.__module__, fromlist=["_"])))


def _choices(annotation: object) -> tuple | None:
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    return None


def _nested(annotation: object) -> type | None:
    """The dataclass a field holds (``X`` or ``X | None``), if any."""
    options = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or \
        typing.get_origin(annotation) is typing.Union else (annotation,)
    classes = [a for a in options if isinstance(a, type) and dataclasses.is_dataclass(a)]
    return classes[0] if classes else None


def _other_numbers(name: str, v: float) -> list[float]:
    return [float(f"{x:.12g}") for x in _other_numbers_raw(name, v)]


def _other_numbers_raw(name: str, v: float) -> list[float]:
    if v == 0:
        return [1e-7] if "eps" in name else [0.5, 1.0]
    if v < 0:  # a sentinel that turns the feature off (-1): turn it on
        return [0.5, 0.0]
    if v < 1e-3:
        return [v * 10, 0.0]
    if v < 0.5:
        return [v * 2, v + 0.1]
    if v < 1:
        return [v - 0.1, v / 2]
    if v >= 100:
        return [v * 2]
    return [v - 1.0 if v > 1 else 2.0, v * 2]


def other_values(name: str, value: object, annotation: object) -> list:
    """Plausible other values of a convention field, best first: a bool flipped, another choice of a Literal, an
    int +1 / -1, a float by :func:`_other_numbers` (eps 1e-7 -> 1e-6, weight 2 -> 1, alpha 0.25 -> 0.5, threshold
    0.5 -> 0.4, a sentinel -1 -> 0.5), a tuple's first number changed, None -> 0.5 for an optional float."""
    choices = _choices(annotation)
    if choices is not None:
        return [c for c in choices if c != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1]
    if isinstance(value, float):
        return _other_numbers(name, value)
    if isinstance(value, tuple) and value and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                  for x in value):
        return [(y, *value[1:]) for y in _other_numbers(name, float(value[0]))]
    if value is None and "float" in str(annotation):
        return [0.5]
    return []


def mutable_fields(cls: type, prefix: str = "") -> tuple[list[str], dict[str, str]]:
    """The dotted field paths of ``cls`` that get a mutant (nested conventions recursed) and ``{path: reason}`` for
    those that do not."""
    paths, skipped = [], {}
    for f in dataclasses.fields(cls):
        path, annotation = prefix + f.name, _field_types(cls)[f.name]
        if (cls, f.name) in SKIPPED_FIELDS:
            skipped[path] = SKIPPED_FIELDS[(cls, f.name)]
        elif (inner := _nested(annotation)) is not None:
            more, why = mutable_fields(inner, path + ".")
            paths += more
            skipped.update(why)
        elif _choices(annotation) is not None or any(t in str(annotation) for t in ("float", "int", "bool", "tuple")):
            paths.append(path)
        else:
            skipped[path] = f"of type {annotation}: neither a number nor a choice"
    return paths, skipped


#: Environment variable naming a file to which a mutated field's first read by a formula is appended (one line per
#: process): tests/meta/power.py tells a mutant whose field no check reads (an equivalent mutant) from a miss.
READS_FILE = "DETCONF_FAULT_FIELD_READS"

#: Reads that are not a formula's: the dataclass machinery (replace, fields, eq, hash, repr) and the conventions'
#: own validation.
_NOT_A_FORMULA = frozenset({"__init__", "__post_init__", "__repr__", "__eq__", "__hash__", "replace", "_replace",
                            "asdict", "_asdict_inner", "astuple", "_astuple_inner", "fields"})
_TRACKED: dict[tuple[type, str], type] = {}


def _record_read(field: str) -> None:
    import os
    import sys
    caller = sys._getframe(2)
    if caller.f_code.co_name in _NOT_A_FORMULA or caller.f_globals.get("__name__") in ("dataclasses", "copy", __name__):
        return
    path = os.environ.get(READS_FILE)
    if path and field not in _recorded:
        _recorded.add(field)
        with open(path, "a") as out:
            out.write(f"{field} {caller.f_globals.get('__name__')}:{caller.f_code.co_name}\n")


_recorded: set[str] = set()


def tracked(instance: object, field: str) -> object:
    """``instance`` (a frozen dataclass) as an instance of a subclass that notes a formula's read of ``field``
    (:data:`READS_FILE`); it pickles as the plain class."""
    cls = type(instance)
    if (cls, field) not in _TRACKED:
        def __getattribute__(self, name, _field=field, _base=cls):
            if name == _field:
                _record_read(f"{_base.__name__}.{_field}")
            return _base.__getattribute__(self, name)

        def __reduce__(self, _base=cls):
            return functools.partial(_base, **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}), ()

        _TRACKED[cls, field] = type(cls.__name__, (cls,), {"__getattribute__": __getattribute__,
                                                           "__reduce__": __reduce__, "__module__": cls.__module__})
    out = object.__new__(_TRACKED[cls, field])
    for f in dataclasses.fields(instance):
        object.__setattr__(out, f.name, getattr(instance, f.name))
    return out


def mutate(instance: object, path: str, values: Callable = other_values) -> object:
    """``instance`` with the field at dotted ``path`` set to its first valid other value (``values(name, value,
    annotation)``, :func:`other_values`), unchanged if none is valid. The changed instance notes a formula's read of
    the field (:func:`tracked`)."""
    head, _, rest = path.partition(".")
    value = getattr(instance, head)
    if rest:
        return instance if value is None else dataclasses.replace(instance, **{head: mutate(value, rest, values)})
    annotation = _field_types(type(instance))[head]
    for other in values(head, value, annotation):
        try:
            return tracked(dataclasses.replace(instance, **{head: other}), head)
        except (OracleInputError, ValueError, TypeError):
            continue
    return instance


@contextlib.contextmanager
def mutated_conventions(cls: type, path: str, values: Callable = other_values) -> Iterator[None]:
    """Every convention of class ``cls`` the reference can look up -- each profile's field, each preset of the
    registry, each entry of a preset table of components/ -- with ``path`` mutated, for the duration."""
    profiles = dict(conv_profiles.PROFILES)
    presets = conv_registry.PRESETS
    tables = [t for m in (contract, dense_calls) for t in vars(m).values()
              if isinstance(t, dict) and any(isinstance(v, cls) for v in t.values())]
    saved = [dict(t) for t in tables]
    try:
        for name, p in profiles.items():
            changes = {f.name: mutate(getattr(p, f.name), path, values) for f in dataclasses.fields(p)
                       if isinstance(getattr(p, f.name), cls)}
            conv_profiles.PROFILES[name] = dataclasses.replace(p, **changes)
        conv_registry.PRESETS = types.MappingProxyType(
            {k: (mutate(v, path, values) if isinstance(v, cls) else v) for k, v in presets.items()})
        for t in tables:
            for k, v in t.items():
                if isinstance(v, cls):
                    t[k] = mutate(v, path, values)
        yield
    finally:
        conv_profiles.PROFILES.clear()
        conv_profiles.PROFILES.update(profiles)
        conv_registry.PRESETS = presets
        for t, s in zip(tables, saved):
            t.clear()
            t.update(s)


@contextlib.contextmanager
def noting_reads(cls: type, field: str) -> Iterator[None]:
    """Every instance of ``cls`` notes a formula's read of ``field`` (:data:`READS_FILE`), for the duration: the
    call builds the instance itself from its config, so :func:`tracked` cannot wrap it."""
    own = cls.__dict__.get("__getattribute__")

    def __getattribute__(self, name, _base=cls):
        if name == field:
            _record_read(f"{_base.__name__}.{field}")
        return object.__getattribute__(self, name)

    cls.__getattribute__ = __getattribute__
    try:
        yield
    finally:
        if own is None:
            del cls.__getattribute__
        else:
            cls.__getattribute__ = own


def _config_mutant(call, cls: type, path: str):
    """``call`` with the config key ``path`` (a field of ``cls`` built from the config) set to another value; a
    formula's read of the field goes to :data:`READS_FILE` (:func:`noting_reads`)."""
    def mutant(inputs, config, profile):
        present = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config.items()}
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        value = present.get(path, fields[path])
        for other in other_values(path, value, _field_types(cls)[path]):
            try:
                cls(**{**{k: v for k, v in present.items() if k in fields}, path: other})
            except (OracleInputError, ValueError, TypeError):
                continue
            with noting_reads(cls, path):
                return call(inputs, {**config, path: list(other) if isinstance(other, tuple) else other}, profile)
        return call(inputs, config, profile)
    return mutant


def _registry_mutant(call, cls: type, path: str):
    def mutant(inputs, config, profile):
        with mutated_conventions(cls, path):
            return call(inputs, config, profile)
    return mutant


def _convention_faults() -> list[Fault]:
    out = []
    for component, sources in CONVENTIONS.items():
        call = COMPONENTS[component].call
        for source, cls in sources:
            for path in mutable_fields(cls)[0]:
                wrap = _registry_mutant if source == "registry" else _config_mutant
                name = f"{component}~{cls.__name__}.{path}"
                out.append(Fault(name, component, "convention field",
                                 f"{cls.__name__}.{path} changed to another plausible value "
                                 f"({'every profile and preset' if source == 'registry' else 'the config'})",
                                 functools.partial(_with, name, component, wrap(call, cls, path)),
                                 notes_reads=True))
    return out


# --------------------------------------------------------------------------- handwritten kinks and formulas

def _ref(component: str):
    return COMPONENTS[component].call


@contextlib.contextmanager
def _patched(module, name: str, value) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _max_iou_strict(threshold: str):
    from oracle.assign.max_iou import max_iou_assign

    def assign(inputs, config, profile):
        convention = F.strict_comparison(dense_calls.max_iou_convention(config, profile), threshold)
        r = max_iou_assign(inputs["priors"], inputs["gt_boxes"], inputs["gt_labels"], convention=convention,
                           gt_boxes_ignore=inputs.get("gt_boxes_ignore"))
        return {"gt_inds": r.gt_inds, "max_overlaps": r.max_overlaps, "labels": r.labels}
    return assign


def _max_iou_ignore(change):
    """The reference's max-IoU assigner on ``change(convention)`` (a MaxIoUConvention -> one)."""
    from oracle.assign.max_iou import max_iou_assign

    def assign(inputs, config, profile):
        convention = change(dense_calls.max_iou_convention(config, profile))
        r = max_iou_assign(inputs["priors"], inputs["gt_boxes"], inputs["gt_labels"], convention=convention,
                           gt_boxes_ignore=inputs.get("gt_boxes_ignore"))
        return {"gt_inds": r.gt_inds, "max_overlaps": r.max_overlaps, "labels": r.labels}
    return assign


def _ignore_at_threshold(c):
    # One float64 ULP down: ``iof > nextafter(t, -inf)`` is ``iof >= t`` on the reference's float64 IoF.
    return dataclasses.replace(c, ignore_iof_thr=math.nextafter(c.ignore_iof_thr, -math.inf)) \
        if c.ignore_iof_thr > 0 else c


def _anchor_head_field_ignored(field: str):
    """The reference anchor head with its preset's ``field`` whatever the config's ``head_overrides`` say: a constant
    where mmdet's config has a number."""
    def call(inputs, config, profile):
        overrides = {k: v for k, v in config.get("head_overrides", {}).items() if k != field}
        return _ref("criteria.anchor_head")(inputs, {**config, "head_overrides": overrides}, profile)
    return call


def _task_aligned_topk(delta: int):
    def call(inputs, config, profile):
        with mutated_conventions(conv.TaskAlignedConvention, "topk", lambda name, k, _: [max(k + delta, 1)]):
            return _ref("assign.task_aligned")(inputs, config, profile)
    return call


def _area_plus_one(inputs, config, profile):
    from oracle import boxes as box_ops
    b = box_ops.convert(inputs["boxes"], config["fmt"], "xyxy")
    return {"area": (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)}


def _convert_half_width(inputs, config, profile):
    out = _ref("boxes.convert")(inputs, config, profile)
    if config["src"] == "cxcywh" and config["dst"] != "cxcywh":  # the size added whole to the centre
        b = inputs["boxes"]
        xyxy = torch.cat([b[..., :2] - b[..., 2:], b[..., :2] + b[..., 2:]], -1)
        from oracle import boxes as box_ops
        return {"boxes": box_ops.convert(xyxy, "xyxy", config["dst"])}
    return out


def _padding_inverted(inputs, config, profile):
    return {"mask": ~_ref("masks.padding")(inputs, config, profile)["mask"]}


def _crop_inclusive(inputs, config, profile):
    """x2, y2 taken as inclusive pixel indices: each box one pixel wider and taller."""
    boxes = inputs["boxes"] + torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=inputs["boxes"].dtype)
    return _ref("masks.crop")({**inputs, "boxes": boxes}, config, profile)


def _downsample_nearest_exact(inputs, config, profile):
    m = inputs["masks"]
    out = torch.nn.functional.interpolate(m[None].double(), size=tuple(config["size"]), mode="nearest-exact")[0]
    return {"masks": out.to(m.dtype)}


def _encoder_ignores_padding(inputs, config, profile):
    return _ref("transformer.encoder")({**inputs, "key_padding_mask": None}, config, profile)


def _decoder_ignores_query_pos(inputs, config, profile):
    return _ref("transformer.decoder")({**inputs, "query_pos": None}, config, profile)


def _detr_head_one_reg_fc(inputs, config, profile):
    """The box MLP with one hidden layer fewer (its last hidden layer skipped)."""
    return _ref("heads.detr")(inputs, {**config, "num_reg_fcs": config.get("num_reg_fcs", 2) - 1}, profile) \
        if config.get("num_reg_fcs", 2) > 1 else _ref("heads.detr")(inputs, config, profile)


def _points_offset_zero(inputs, config, profile):
    return _ref("anchors.points")(inputs, {**config, "offset": 0.0}, profile)


def _dist2bbox_no_half(inputs, config, profile):
    out = _ref("coders.dist2bbox")(inputs, config, profile)
    if config.get("fmt", "xyxy") == "cxcywh":  # the centre shifted by (r - l) instead of (r - l) / 2
        d, p = inputs["distances"], inputs["points"]
        lt, rb = d[..., :2], d[..., 2:]
        return {"boxes": torch.cat([p + (rb - lt), lt + rb], -1)}
    return out


def _iou_loss_coordinate_weights_summed(inputs, config, profile):
    """A per-coordinate weight [N, 4] summed over the four, where mmdet's IoU losses average it."""
    weight = inputs.get("weight")
    if weight is not None and weight.dim() > 1:
        inputs = {**inputs, "weight": weight.sum(-1)}
    return _ref("losses.giou_loss")(inputs, config, profile)


def _decode_clip_minimum(inputs, config, profile):
    """The decoded boxes clipped to the border with torch.minimum: a corner exactly on it gets half its gradient
    (mmdet's torch.where keeps it whole)."""
    shape = config.get("max_shape")
    boxes = _ref("coders.delta_xywh_decode")(inputs, {**config, "max_shape": None}, profile)["boxes"]
    if shape is not None and config.get("clip_border", True):
        h, w = shape
        boxes = torch.minimum(boxes.clamp(min=0.0), boxes.new_tensor([w, h, w, h]))
    return {"boxes": boxes}


def _bbox2dist_reg_max(inputs, config, profile):
    """bbox2dist called with reg_max where ultralytics passes reg_max - 1: the clamp one bin too high."""
    reg_max = config.get("reg_max")
    return _ref("coders.bbox2dist")(inputs, {**config, "reg_max": reg_max + 1} if reg_max else config, profile)


def _dfl_bins_from_one(inputs, config, profile):
    """The expectation over bins 1 .. reg_max (projection arange(1, reg_max + 1))."""
    return {"distances": _ref("coders.dfl_expectation")(inputs, config, profile)["distances"] + 1}


def _dfl_clamp_low(inputs, config, profile):
    """DFL targets clamped at reg_max - 1 - 0.1 (not - 0.01)."""
    bins = inputs["logits"].shape[-1]
    return _ref("losses.distribution_focal_loss")({**inputs, "targets": inputs["targets"].clamp(max=bins - 1.1)},
                                                  config, profile)


def _yolov8_decode_offset_zero(inputs, config, profile):
    return _ref("heads.yolov8_decode")(inputs, {**config, "offset": 0.0}, profile)


def _smooth_l1_beta_one(inputs, config, profile):
    return _ref("losses.smooth_l1_loss")(inputs, {**config, "beta": 1.0 if config.get("beta", 1.0) != 1.0 else 0.5},
                                         profile)


def _reduction_ignored(component: str):
    def call(inputs, config, profile):
        return _ref(component)(inputs, {**config, "reduction": "mean"} if "avg_factor" not in config else config,
                               profile)
    return call


def _ce_ignores_class_weight(inputs, config, profile):
    return _ref("losses.softmax_cross_entropy")({k: v for k, v in inputs.items() if k != "class_weight"}, config,
                                                profile)


def _bce_ignores_pos_weight(inputs, config, profile):
    return _ref("losses.sigmoid_binary_cross_entropy")({k: v for k, v in inputs.items() if k != "pos_weight"},
                                                       {k: v for k, v in config.items() if k != "pos_weight"}, profile)


def _dice_smooth_zero(inputs, config, profile):
    return _ref("losses.dice_loss")(inputs, {**config, "smooth": 0.0 if config.get("smooth", 1.0) else 1.0}, profile)


def _focal_alpha_swapped(inputs, config, profile):
    """alpha weighting the negatives instead of the positives."""
    alpha = config.get("alpha", 0.25)
    return _ref("losses.sigmoid_focal_loss")(inputs, {**config, "alpha": None if alpha is None else 1 - alpha},
                                             profile)


def _cdn_label_noise_le(inputs, config, profile):
    """label_p <= ratio / 2 (the reference: <): a draw exactly at ratio / 2 is relabelled."""
    ratio = config["label_noise_ratio"]
    return _ref("criteria.cdn")(inputs, {**config, "label_noise_ratio": math.nextafter(ratio, math.inf)
                                         if ratio > 0 else ratio}, profile)


def _cdn_box_noise_halved(inputs, config, profile):
    return _ref("criteria.cdn")(inputs, {**config, "box_noise_scale": config["box_noise_scale"] / 2}, profile)


def _hand(name: str, component: str, kind: str, what: str, call) -> Fault:
    return Fault(name, component, kind, what, functools.partial(_with, name, component, call))


def _existing(name: str, component: str, kind: str, factory, dtype: str = "float32") -> Fault:
    return Fault(name, component, kind, (factory.__doc__ or "").strip().splitlines()[0], factory, dtype=dtype)


def _handwritten() -> list[Fault]:
    strict = [_hand(f"max-iou-strict-{t.replace('[lo]', '-lo').replace('_', '-')}", "assign.max_iou",
                    "threshold/kink", f"the comparison at {t} wrong about equality (faulty_adapters.strict_comparison)",
                    _max_iou_strict(t)) for t in ("min_pos_iou", "neg_iou_thr", "neg_iou_thr[lo]")]
    ignore = [
        _hand("max-iou-ignore-at-threshold", "assign.max_iou", "threshold/kink",
              "a prior whose IoF with an ignore region is exactly ignore_iof_thr is ignored (>= for mmdet's >)",
              _max_iou_ignore(_ignore_at_threshold)),
        _hand("max-iou-ignore-wrt-candidates-hardcoded", "assign.max_iou", "convention field",
              "IoF always relative to the prior (ignore_wrt_candidates=True), whatever the config says",
              _max_iou_ignore(lambda c: dataclasses.replace(c, ignore_wrt_candidates=True))),
    ]
    anchor_head = [_hand(f"anchor-head-{f.replace('_', '-')}-hardcoded", "criteria.anchor_head", "convention field",
                         f"the preset's {f} whatever the config sets", _anchor_head_field_ignored(f))
                   for f in dense_calls.ANCHOR_HEAD_FIELDS]
    return [
        *ignore,
        *anchor_head,
        _existing("wrong-giou-eps", "boxes.overlap", "convention field", F.wrong_giou_eps),
        _existing("focal-wrong-count", "criteria.set_criterion", "formula", F.focal_wrong_count),
        _existing("greedy-matcher", "assign.hungarian", "formula", F.greedy_matcher),
        _existing("wrong-focal-gradient", "losses.sigmoid_focal_loss", "gradient", F.wrong_focal_gradient),
        _existing("naive-focal", "losses.sigmoid_focal_loss", "precision", F.naive_focal_in_input_dtype),
        _existing("off-by-one-nearest", "masks.resize", "threshold/kink", F.off_by_one_nearest),
        _existing("pe-wrong-offset", "position.sine", "convention field", F.pe_wrong_offset),
        _existing("pe-in-float32", "position.sine", "precision", F.pe_in_float32),
        _existing("decode-three-levels-swapped-strides", "heads.yolov8_decode", "formula",
                  F.decode_three_levels_swapped_strides),
        _existing("hungarian-int32-indices", "assign.hungarian", "dtype", F.hungarian_int32_indices),
        _existing("focal-cost-probability-clamp", "assign.hungarian", "precision", F.focal_cost_probability_clamp),
        _existing("matcher-raises-on-non-finite", "assign.hungarian", "input check", F.matcher_raises_on_non_finite),
        _existing("non-finite-cost-zero", "assign.hungarian", "convention field", F.non_finite_cost_zero),
        _existing("coder-stds-hardcoded", "coders.delta_xywh_decode", "convention field", F.coder_stds_hardcoded),
        _existing("task-aligned-eps-hardcoded", "assign.task_aligned", "convention field",
                  F.task_aligned_eps_hardcoded),
        _existing("task-aligned-alpha-hardcoded", "assign.task_aligned", "convention field",
                  F.task_aligned_alpha_hardcoded),
        _existing("yolov8-box-gain-hardcoded", "criteria.yolov8_detection", "convention field",
                  F.yolov8_box_gain_hardcoded),
        _existing("max-iou-strict-positive", "assign.max_iou", "threshold/kink", F.max_iou_strict_positive),
        _existing("giou-loss-additive-eps", "losses.giou_loss", "convention field", F.giou_loss_additive_eps),
        _existing("giou-loss-additive-eps-1e-9", "losses.giou_loss", "convention field", F.giou_loss_additive_eps_1e9),
        _existing("hungarian-without-label-check", "assign.hungarian", "input check", F.hungarian_without_label_check),
        _existing("dino-nonzero-dn-keys", "criteria.set_criterion", "output names", F.dino_nonzero_dn_keys),
        _existing("criterion-drops-encoder-terms", "criteria.set_criterion", "dropped feature",
                  F.criterion_drops_encoder_terms),
        *[_existing(factory.__name__.replace("_", "-"), component, "convention field", factory)
          for component, factory in (
            ("criteria.set_criterion", F.criterion_eos_coef_hardcoded),
            ("criteria.set_criterion", F.criterion_focal_alpha_hardcoded),
            ("criteria.set_criterion", F.criterion_focal_gamma_hardcoded),
            ("criteria.set_criterion", F.criterion_bbox_weight_hardcoded),
            ("criteria.set_criterion", F.criterion_matcher_giou_weight_hardcoded),
            ("criteria.mmdet_detr_head", F.mmdet_detr_head_giou_weight_hardcoded),
            ("criteria.mmdet_detr_head", F.mmdet_detr_head_bg_cls_weight_hardcoded),
            ("criteria.mmdet_detr_head", F.mmdet_detr_head_focal_alpha_hardcoded),
            ("criteria.mmdet_detr_head", F.mmdet_detr_head_matcher_giou_weight_hardcoded))],
        _existing("smooth-l1-beta-inverted", "losses.smooth_l1_loss", "convention field", F.smooth_l1_beta_inverted),
        _existing("dfl-without-clamp", "losses.distribution_focal_loss", "threshold/kink", F.dfl_without_clamp),
        _existing("anchor-offsets-hardcoded", "anchors.grid", "convention field", F.anchor_offsets_hardcoded),
        _existing("task-aligned-topk-off-by-one", "assign.task_aligned", "threshold/kink",
                  F.task_aligned_topk_off_by_one),
        _existing("iou-loss-zero-weights-raise", "losses.giou_loss", "empty shape", F.iou_loss_zero_weights_raise),
        _existing("dfl-bins-swapped", "criteria.yolov8_detection", "formula", F.dfl_bins_swapped),
        _existing("seg-proto-sum-times-zero", "criteria.yolov8_segmentation", "dtype", F.seg_proto_sum_times_zero,
                  dtype="float16"),
        _existing("seg-empty-per-target-masks-raise", "criteria.yolov8_segmentation", "empty shape",
                  F.seg_empty_per_target_masks_raise),
        *strict,
        _hand("task-aligned-topk-plus-one", "assign.task_aligned", "threshold/kink", "top-k takes k + 1 candidates",
              _task_aligned_topk(+1)),
        _hand("task-aligned-topk-minus-one", "assign.task_aligned", "threshold/kink", "top-k takes k - 1 candidates",
              _task_aligned_topk(-1)),
        _hand("area-plus-one", "boxes.area", "formula", "the legacy +1 pixel area (x2 - x1 + 1)(y2 - y1 + 1)",
              _area_plus_one),
        _hand("convert-whole-size", "boxes.convert", "formula", "cxcywh -> corners with the whole size, not half",
              _convert_half_width),
        _hand("padding-inverted", "masks.padding", "formula", "True marks the valid pixels, not the padding",
              _padding_inverted),
        _hand("crop-inclusive", "masks.crop", "threshold/kink", "x2, y2 as inclusive pixel indices", _crop_inclusive),
        _hand("downsample-nearest-exact", "masks.downsample", "threshold/kink",
              "nearest-exact (round half) instead of nearest (floor) source pixels", _downsample_nearest_exact),
        _hand("encoder-ignores-padding", "transformer.encoder", "formula", "key_padding_mask dropped",
              _encoder_ignores_padding),
        _hand("decoder-ignores-query-pos", "transformer.decoder", "formula", "query_pos not added",
              _decoder_ignores_query_pos),
        _hand("detr-head-one-reg-fc-less", "heads.detr", "formula", "the box MLP one hidden layer short",
              _detr_head_one_reg_fc),
        _hand("points-offset-zero", "anchors.points", "convention field", "anchor points at offset 0, not 0.5",
              _points_offset_zero),
        _hand("dist2bbox-no-half", "coders.dist2bbox", "formula", "cxcywh centre shifted by (r - l), not half",
              _dist2bbox_no_half),
        _hand("iou-loss-coordinate-weights-summed", "losses.giou_loss", "convention field",
              "a per-coordinate weight [N, 4] summed over the four, not averaged (mmdet's weight.mean(-1))",
              _iou_loss_coordinate_weights_summed),
        _hand("decode-clip-gradient-halved", "coders.delta_xywh_decode", "threshold/kink",
              "a corner exactly on the clip border gets half its gradient (torch.minimum)", _decode_clip_minimum),
        _hand("bbox2dist-clamp-one-bin-high", "coders.bbox2dist", "threshold/kink",
              "distances clamped at reg_max - 0.01, not reg_max - 1 - 0.01", _bbox2dist_reg_max),
        _hand("dfl-bins-from-one", "coders.dfl_expectation", "threshold/kink", "the bins projected as 1 .. reg_max",
              _dfl_bins_from_one),
        _hand("dfl-loss-clamp-low", "losses.distribution_focal_loss", "threshold/kink",
              "targets clamped at reg_max - 1 - 0.1, not - 0.01", _dfl_clamp_low),
        # No YOLOv8 criterion fault with the bbox2dist clamp one bin high: the criterion's DFL clamps its targets at
        # reg_max - 1 - 0.01 again (ultralytics utils/loss.py DFLoss, oracle/criteria/yolov8.py), so that clamp is
        # undone before it changes anything -- an equivalent mutant (measured: the same outputs on draws whose targets
        # pass the clamp). bbox2dist-clamp-one-bin-high and dfl-without-clamp break each clamp where it shows.
        _hand("yolov8-decode-offset-zero", "heads.yolov8_decode", "convention field", "anchor points at offset 0",
              _yolov8_decode_offset_zero),
        _hand("smooth-l1-wrong-beta", "losses.smooth_l1_loss", "threshold/kink",
              "the kink at beta 1 whatever the config (0.5 where the config says 1)", _smooth_l1_beta_one),
        _hand("l1-reduction-ignored", "losses.l1_loss", "formula", "always the mean, whatever the reduction",
              _reduction_ignored("losses.l1_loss")),
        _hand("ce-ignores-class-weight", "losses.softmax_cross_entropy", "formula", "class_weight dropped",
              _ce_ignores_class_weight),
        _hand("bce-ignores-pos-weight", "losses.sigmoid_binary_cross_entropy", "formula", "pos_weight dropped",
              _bce_ignores_pos_weight),
        _hand("dice-smooth-zero", "losses.dice_loss", "formula", "smooth 0 where the config says 1", _dice_smooth_zero),
        _hand("focal-alpha-swapped", "losses.sigmoid_focal_loss", "formula", "alpha weights the negatives",
              _focal_alpha_swapped),
        _hand("cdn-label-noise-le", "criteria.cdn", "threshold/kink", "label_p <= ratio / 2 relabels (reference <)",
              _cdn_label_noise_le),
        _hand("cdn-box-noise-halved", "criteria.cdn", "formula", "box noise scale halved", _cdn_box_noise_halved),
    ]


#: Every registered fault, by name.
FAULTS: dict[str, Fault] = {f.name: f for f in [*_handwritten(), *_convention_faults()]}

# --------------------------------------------------------------------------- equivalent in effect

_NO_GRADIENT_IN_ASSIGNMENT = (
    "'clamp' and 'strict' give the same overlaps and differ only in their gradient where two boxes exactly touch; "
    "an assignment takes no gradient (oracle/assign: detached overlaps, a cost under torch.no_grad, as every "
    "upstream assigner and matcher)")
_CONSTANT_COST = (
    "a constant added to every query-target cost moves every complete matching's total by the same amount (each has "
    "min(Q, T) pairs), so the matching and the losses are unchanged up to the rounding of the sum; the criterion "
    "reports losses, not costs (assign.hungarian reports the cost matrix, and its checks catch this mutant)")
_FINITE_BEFORE_MATCHING = (
    "the criterion refuses non-finite predictions (OracleInputError, oracle/criteria/_inputs.py and "
    "mmdet_detr_head.py) before it matches, so the matcher's policy for them is never reached inside it "
    "(assign.hungarian's non-finite checks catch this mutant)")

_CLAMPED_AT_ZERO = (
    "the task-aligned assigner clamps its CIoU overlaps at 0 (oracle/assign/task_aligned.py, as ultralytics' "
    "TaskAlignedAssigner.iou_calculation: clamp_(0)), and CIoU <= IoU <= 1: a clamp to [-1, 1] before that changes "
    "nothing")

#: Fault-name globs -> why a mutant whose field a formula reads still cannot change anything a check compares (an
#: equivalent mutant in effect). tests/meta/power.py leaves such a mutant out of the count only while no check
#: catches it: a listed mutant that is caught is reported as a wrong reason, and the run fails.
EQUIVALENT_IN_EFFECT: dict[str, str] = {
    "assign.*~*iou.intersection": _NO_GRADIENT_IN_ASSIGNMENT,
    "criteria.*~MatcherConvention.giou.intersection": _NO_GRADIENT_IN_ASSIGNMENT,
    "criteria.*~*.matcher.giou.intersection": _NO_GRADIENT_IN_ASSIGNMENT,
    "criteria.*~*.assigner.iou.intersection": _NO_GRADIENT_IN_ASSIGNMENT,
    "criteria.*~MatcherConvention.giou_cost_offset": _CONSTANT_COST,
    "criteria.*~*.matcher.giou_cost_offset": _CONSTANT_COST,
    "criteria.*~MatcherConvention.non_finite_cost": _FINITE_BEFORE_MATCHING,
    "criteria.*~*.matcher.non_finite_cost": _FINITE_BEFORE_MATCHING,
    "assign.task_aligned~*iou.ciou_clamp": _CLAMPED_AT_ZERO,
    "criteria.yolov8_*~*.assigner.iou.ciou_clamp": _CLAMPED_AT_ZERO,
    "criteria.yolov8_segmentation~YOLOv8LossConfig.overlap_mask": (
        "the format of the masks input, which every golden case and generated test of the segmentation loss gives "
        "in its config (overlap_mask) and which replaces the profile's field (components/dense_calls.py)"),
}


def equivalent_in_effect(fault: str) -> str | None:
    """The reason :data:`EQUIVALENT_IN_EFFECT` gives for ``fault``, if any."""
    import fnmatch
    return next((why for glob, why in EQUIVALENT_IN_EFFECT.items() if fnmatch.fnmatchcase(fault, glob)), None)


def __getattr__(name: str) -> Callable[[], Adapter]:
    """``--impl=py:tests.meta.faults:NAME``: the factory of fault NAME."""
    if name in FAULTS:
        return FAULTS[name].factory
    raise AttributeError(name)
