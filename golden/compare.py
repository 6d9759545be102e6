"""The drift policy: when a float64 output of the reference still agrees with its fixture (docs/golden.md).

A floating output agrees with its stored value when every element satisfies

    |actual - stored| <= normwise_ulps * eps64 * scale

where ``scale`` is the largest finite |stored| of the tensor, or, for a gradient (``out.grad.*``), of
the whole gradient of the case (one vector d objective / d inputs, as the conformance suite judges it:
a gradient block that cancels to near zero is a difference of terms of the size of the others). The
budget ``normwise_ulps`` is per component, in ``golden/drift.toml``, each with the measured spread
across platforms that it covers. NaN and infinities must be in the same places; integers, booleans
(matchings, flags, labels), names, dtypes and shapes must be equal.

Elementwise ULPs (the error in units of the element's own last place) are reported beside the
normwise figure: they say how many bits of an element moved, but not whether it matters, since an
entry many orders below its tensor's scale keeps few correct bits on any machine.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from components.contract import reference_outputs

from .store import flatten, unflatten

DRIFT_PATH = Path(__file__).with_name("drift.toml")
EPS64 = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Budget:
    """How far a component's float outputs may move between platforms, in float64 ULPs of their scale."""

    normwise_ulps: float
    reason: str


@lru_cache(maxsize=None)
def _table(path: Path = DRIFT_PATH) -> dict:
    table = tomllib.loads(path.read_text())
    for i, entry in enumerate([table.get("default", {}), *table.get("component", [])]):
        missing = {"normwise_ulps", "reason"} - set(entry) | ({"pattern"} - set(entry) if i else set())
        if missing:
            raise ValueError(f"{path}: entry #{i} lacks {sorted(missing)} (every budget needs its measured reason)")
    return table


def budget(component: str) -> Budget:
    """The drift budget of ``component``: its first matching ``[[component]]`` entry, else ``[default]``."""
    table = _table()
    for entry in table.get("component", []):
        if fnmatch.fnmatchcase(component, entry["pattern"]):
            return Budget(float(entry["normwise_ulps"]), entry["reason"])
    return Budget(float(table["default"]["normwise_ulps"]), table["default"]["reason"])


@dataclass(frozen=True)
class Difference:
    """One output (or input) of one case that moved, or a problem with its fixture."""

    case: str
    tensor: str
    what: str  # "values", "shape", "dtype", "missing", "unexpected", "damaged", "metadata", ...
    max_abs: float = 0.0
    max_rel: float = 0.0
    ulps: float = 0.0
    norm_ulps: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class Figures:
    """How far one float tensor moved: greatest absolute and relative error, greatest error in ULPs of the
    element itself (elementwise) and in ULPs of the scale (normwise), and whether NaN/inf positions agree."""

    max_abs: float
    max_rel: float
    ulps: float
    norm_ulps: float
    scale: float
    specials_agree: bool


def scale_of(tensor: torch.Tensor) -> float:
    """The largest finite |value| of a float tensor (0 for none)."""
    e = tensor.detach().to(torch.float64).numpy()
    finite = e[np.isfinite(e)]
    return float(np.abs(finite).max()) if finite.size else 0.0


def measure(actual: torch.Tensor, expected: torch.Tensor, scale: float | None = None) -> Figures:
    """The :class:`Figures` of ``actual`` against ``expected`` (float tensors of one shape)."""
    a = actual.detach().to(torch.float64).numpy()
    e = expected.detach().to(torch.float64).numpy()
    scale = scale_of(expected) if scale is None else scale
    if a.size == 0:
        return Figures(0.0, 0.0, 0.0, 0.0, scale, True)
    finite = np.isfinite(a) & np.isfinite(e)
    specials_agree = bool(np.all(finite | (a == e) | (np.isnan(a) & np.isnan(e))))
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf: judged by specials_agree
        diff = np.where(finite, np.abs(a - e), 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # an error at an exact 0 is inf of them
        rel = np.where(diff == 0, 0.0, diff / np.abs(e))
        ulps = np.where(diff == 0, 0.0, diff / np.spacing(np.abs(e)))
    max_abs = float(diff.max())
    norm = max_abs / (EPS64 * scale) if scale > 0 else (0.0 if max_abs == 0 else np.inf)
    return Figures(max_abs, float(np.nan_to_num(rel.max(), nan=np.inf)), float(ulps.max()), float(norm), scale,
                   specials_agree)


def gradient_scale(tensors: Mapping[str, torch.Tensor], prefix: str = "out.grad.") -> float:
    """The scale of a case's whole gradient: the largest finite |value| over its ``out.grad.*`` tensors."""
    return max((scale_of(t) for name, t in tensors.items() if name.startswith(prefix) and t.dtype.is_floating_point),
               default=0.0)


def compare_outputs(case: str, component: str, actual: Mapping[str, torch.Tensor],
                    expected: Mapping[str, torch.Tensor], normwise_ulps: float | None = None,
                    figures: dict[str, Figures] | None = None) -> list[Difference]:
    """Every difference between the flat outputs (``out.*``) of a case and its stored ones, under the drift
    budget of ``component`` (or ``normwise_ulps`` when given). ``figures``, when given, receives the
    figures of every float output, passing or not."""
    limit = budget(component).normwise_ulps if normwise_ulps is None else normwise_ulps
    grad_scale = gradient_scale(expected)
    out = _structure(case, actual, expected)
    for name in sorted(set(actual) & set(expected)):
        a, e = actual[name], expected[name]
        if a.dtype != e.dtype or a.shape != e.shape:
            continue
        if not e.dtype.is_floating_point:
            if not torch.equal(a, e):
                changed = int((a != e).sum())
                out.append(Difference(case, name, "values", float((a.double() - e.double()).abs().max()), 0.0,
                                      float("inf"), float("inf"), f"{changed} of {a.numel()} integer values differ"))
            continue
        fig = measure(a, e, grad_scale if name.startswith("out.grad.") else None)
        if figures is not None:
            figures[name] = fig
        if not fig.specials_agree:
            out.append(Difference(case, name, "values", fig.max_abs, fig.max_rel, fig.ulps, fig.norm_ulps,
                                  "NaN or infinity in other places"))
        elif fig.norm_ulps > limit:
            out.append(Difference(case, name, "values", fig.max_abs, fig.max_rel, fig.ulps, fig.norm_ulps,
                                  f"budget {limit:g} ULPs of scale {fig.scale:.3g}"))
    return out


def compare_exact(case: str, actual: Mapping[str, torch.Tensor],
                  expected: Mapping[str, torch.Tensor]) -> list[Difference]:
    """Every difference between two flat tensor dicts that must be bit-identical (regenerated inputs)."""
    out = _structure(case, actual, expected)
    for name in sorted(set(actual) & set(expected)):
        a, e = actual[name], expected[name]
        if a.dtype != e.dtype or a.shape != e.shape or _bits(a) == _bits(e):
            continue
        fig = measure(a, e) if a.dtype.is_floating_point else Figures(np.inf, 0.0, np.inf, np.inf, 0.0, True)
        out.append(Difference(case, name, "values", fig.max_abs, fig.max_rel, fig.ulps, fig.norm_ulps))
    return out


def _bits(t: torch.Tensor) -> bytes:
    return t.detach().cpu().numpy().tobytes()


def _structure(case: str, actual: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> list[Difference]:
    out = [Difference(case, name, "missing", detail="in the file but not computed")
           for name in sorted(set(expected) - set(actual))]
    out += [Difference(case, name, "unexpected", detail="computed but not in the file")
            for name in sorted(set(actual) - set(expected))]
    for name in sorted(set(actual) & set(expected)):
        a, e = actual[name], expected[name]
        if a.dtype != e.dtype:
            out.append(Difference(case, name, "dtype", detail=f"{e.dtype} -> {a.dtype}"))
        elif a.shape != e.shape:
            out.append(Difference(case, name, "shape", detail=f"{tuple(e.shape)} -> {tuple(a.shape)}"))
    return out


def format_table(differences: list[Difference]) -> str:
    """The table ``python -m golden check`` prints: normwise ULPs (judged) and elementwise ULPs (reported)."""
    rows = [("case", "tensor", "what", "max abs", "max rel", "ULPs of scale", "ULPs of element", "detail")]
    for d in differences:
        values = d.what == "values"
        figures = ((f"{d.max_abs:.3g}", f"{d.max_rel:.3g}", f"{d.norm_ulps:.3g}", f"{d.ulps:.3g}") if values
                   else ("",) * 4)
        rows.append((d.case, d.tensor, d.what, *figures, d.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def reference_differences(case: str, component: str, config: Mapping, profile: str,
                          stored: Mapping[str, torch.Tensor],
                          figures: dict[str, Figures] | None = None) -> list[Difference]:
    """The reference run on a fixture's stored inputs (``in.*`` of ``stored``) against its stored outputs
    (``out.*``), under the drift policy: the fixture is data, whatever this platform's builders would make of
    its seed."""
    inputs = {k: v for k, v in stored.items() if k.startswith("in.")}
    outputs = {k: v for k, v in stored.items() if k.startswith("out.")}
    fresh = flatten(reference_outputs(component, unflatten(inputs, "in") if inputs else {}, config, profile), "out")
    return compare_outputs(case, component, fresh, outputs, figures=figures)
