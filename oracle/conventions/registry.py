"""The registry: every convention preset and every profile, by name.

A preset is a module-level constant of this package whose value is a convention (a frozen dataclass
instance): ``IOU_MMDET``, ``MAX_IOU_RETINANET_MMDET``, ``TAL_ULTRALYTICS``, ``MMDET_DINO_HEAD``,
``PE_DINO``, ``CODER_MMDET``, ``RETINANET_ANCHOR_GENERATOR``, ``RETINANET_HEAD_MMDET``,
``YOLOV8_ULTRALYTICS``, ... A profile (``detr``, ``mmdet``, ...) is one library's conventions together
(:mod:`oracle.conventions.profiles`). :func:`named` finds either, :func:`lookup` resolves what a golden
case or a caller writes for a convention: a :class:`Profile` field of the case's profile or a preset
name. Unknown names raise :class:`OracleInputError`; nothing is looked up with ``getattr`` elsewhere.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import TypeVar

from ..errors import OracleInputError
from . import dense, detr_criteria, iou, matching, position
from .profiles import PROFILES, Profile, _get_profile

T = TypeVar("T")

_PRESET_MODULES = (iou, matching, detr_criteria, position, dense)


def _presets() -> dict[str, object]:
    out: dict[str, object] = {}
    for module in _PRESET_MODULES:
        for name, value in vars(module).items():
            is_preset = dataclasses.is_dataclass(value) and not isinstance(value, type)
            if name.isupper() and not name.startswith("_") and is_preset:
                if name in out and out[name] is not value:
                    raise AssertionError(f"two presets are called {name}")
                out[name] = value
    return dict(sorted(out.items()))


#: Every preset by name (read-only).
PRESETS: Mapping[str, object] = MappingProxyType(_presets())

#: The fields of :class:`Profile` that hold a convention (``lookup`` resolves them in the case's profile).
PROFILE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Profile)
                                        if f.name not in ("name", "upstream", "notes", "avg_factor_eps",
                                                          "background_weight", "focal_alpha", "focal_gamma"))


def _unknown(what: str, name: object, known: list[str]) -> OracleInputError:
    close = difflib.get_close_matches(str(name), known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f" (the {len(known)} known: {', '.join(known)})"
    return OracleInputError(f"{what}: no preset or profile is called {name!r}{hint}")


def named(name: str, kind: type[T] | None = None) -> T:
    """The preset (upper case: ``IOU_MMDET``) or profile (``mmdet``) called ``name``.

    ``kind``, if given, is the class the caller needs (``MaxIoUConvention``); a name of another kind
    raises :class:`OracleInputError` naming both, as does an unknown name (with the nearest names).
    """
    return _named(name, kind, "name")


def _kind_arg(kind: object) -> None:
    if kind is not None and not isinstance(kind, type):
        raise OracleInputError(f"kind: expected a class (MaxIoUConvention, ...) or None, got {kind!r}")


def _named(name: object, kind: type[T] | None, arg: str) -> T:
    """:func:`named`, calling the name ``arg`` in its errors."""
    _kind_arg(kind)
    if not isinstance(name, str):
        raise OracleInputError(f"{arg}: expected a preset or profile name (a str), got {type(name).__name__}")
    value: object
    if name in PRESETS:
        value = PRESETS[name]
    elif name in PROFILES:
        value = PROFILES[name]
    else:
        raise _unknown(arg, name, [*PRESETS, *PROFILES])
    if kind is not None and not isinstance(value, kind):
        raise OracleInputError(f"kind: {name!r} is a {type(value).__name__}, not a {kind.__name__}")
    return value  # type: ignore[return-value]


def lookup(profile: str, which: str, kind: type[T] | None = None) -> T:
    """What a case's config names as a convention: a :class:`Profile` field (``box_iou``, ``max_iou``, ...)
    of ``profile``, or a preset name (``IOU_MMDET_CIOU_LOSS``, ``MAX_IOU_RPN_MMDET``, ...).

    A profile without that convention (``get_profile("detr").max_iou`` is None) raises
    :class:`OracleInputError`, as does an unknown name or a convention of another ``kind``.
    """
    _kind_arg(kind)
    if isinstance(which, str) and which in PROFILE_FIELDS:
        value = getattr(_get_profile(profile, "profile"), which)
        if value is None:
            raise OracleInputError(f"which: profile {profile!r} has no {which} convention")
        if kind is not None and not isinstance(value, kind):
            raise OracleInputError(f"kind: {profile}.{which} is a {type(value).__name__}, not a {kind.__name__}")
        return value
    return _named(which, kind, "which")


def presets_of(kind: type) -> tuple[str, ...]:
    """The names of every preset of class ``kind`` (``MaxIoUConvention``), sorted: the presets a generated
    test of that convention runs under."""
    if not isinstance(kind, type):
        raise OracleInputError(f"kind: expected a class (MaxIoUConvention, ...), got {kind!r}")
    return tuple(name for name, value in PRESETS.items() if isinstance(value, kind))


def profiles_with(field: str) -> tuple[str, ...]:
    """The profiles that have a ``field`` convention (``matcher``, ``position``, ...), in the order of
    :data:`PROFILES`: the profiles a generated test of that convention runs under. Every one, equal
    conventions included: each profile is a library's claim, and an adapter is checked under the
    profiles it declares."""
    if field not in PROFILE_FIELDS:
        raise OracleInputError(f"field: expected one of {', '.join(PROFILE_FIELDS)}, got {field!r}")
    return tuple(name for name, p in PROFILES.items() if getattr(p, field) is not None)
