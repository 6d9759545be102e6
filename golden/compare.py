"""Numeric comparison of regenerated fixtures with the stored ones (DESIGN §5: a few float64 ULPs).

A float element agrees when ``|a - e| <= max_ulps * ulp`` where ``ulp`` is the float64 spacing at
``max(|e|, tensor_scale * 2^-10)``: relative to the element itself, but no finer than a thousandth of
the tensor's largest magnitude, so that a sum that cancels to near zero is not held to a precision its
terms never had. Integers and booleans must be equal; names, dtypes and shapes must match exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

MAX_ULPS = 4


@dataclass(frozen=True)
class Difference:
    """One output (or input) of one case that moved."""

    case: str
    tensor: str
    what: str  # "values", "shape", "dtype", "missing", "unexpected"
    max_abs: float = 0.0
    max_rel: float = 0.0
    ulps: float = 0.0
    detail: str = ""


def _ulps(actual: torch.Tensor, expected: torch.Tensor) -> tuple[float, float, float]:
    """(max abs error, max rel error, max error in float64 ULPs) of two float64 tensors."""
    a = actual.to(torch.float64).numpy()
    e = expected.to(torch.float64).numpy()
    if a.size == 0:
        return 0.0, 0.0, 0.0
    diff = np.abs(a - e)
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    diff = np.where(same, 0.0, diff)
    scale = float(np.max(np.abs(e))) if np.isfinite(e).all() else np.inf
    floor = scale * 2.0 ** -10 if np.isfinite(scale) else 0.0
    spacing = np.spacing(np.maximum(np.abs(e), floor)) if floor > 0 else np.spacing(np.abs(e))
    spacing = np.where(spacing > 0, spacing, np.finfo(np.float64).smallest_subnormal)
    ulps = np.where(same, 0.0, np.where(np.isfinite(diff), diff / spacing, np.inf))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(same, 0.0, diff / np.abs(e))
    return float(np.max(diff)), float(np.nan_to_num(np.max(rel), nan=np.inf)), float(np.max(ulps))


def compare_tensors(case: str, actual: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
                    max_ulps: float = MAX_ULPS) -> list[Difference]:
    """Every difference between two flat tensor dicts of a case."""
    out: list[Difference] = []
    for name in sorted(set(expected) - set(actual)):
        out.append(Difference(case, name, "missing", detail="in the file but not regenerated"))
    for name in sorted(set(actual) - set(expected)):
        out.append(Difference(case, name, "unexpected", detail="regenerated but not in the file"))
    for name in sorted(set(actual) & set(expected)):
        a, e = actual[name], expected[name]
        if a.dtype != e.dtype:
            out.append(Difference(case, name, "dtype", detail=f"{e.dtype} -> {a.dtype}"))
        elif a.shape != e.shape:
            out.append(Difference(case, name, "shape", detail=f"{tuple(e.shape)} -> {tuple(a.shape)}"))
        elif a.dtype.is_floating_point:
            abs_err, rel_err, ulps = _ulps(a, e)
            if ulps > max_ulps:
                out.append(Difference(case, name, "values", abs_err, rel_err, ulps))
        elif not torch.equal(a, e):
            changed = int((a != e).sum())
            out.append(Difference(case, name, "values", float((a.double() - e.double()).abs().max()), 0.0,
                                  float("inf"), detail=f"{changed} of {a.numel()} integer values differ"))
    return out


def format_table(differences: list[Difference]) -> str:
    """The table `python -m golden check` prints."""
    rows = [("case", "tensor", "what", "max abs", "max rel", "ULPs", "detail")]
    for d in differences:
        rows.append((d.case, d.tensor, d.what, f"{d.max_abs:.3g}" if d.what == "values" else "",
                     f"{d.max_rel:.3g}" if d.what == "values" else "",
                     f"{d.ulps:.3g}" if d.what == "values" else "", d.detail))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
