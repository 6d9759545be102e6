"""Tolerance lookup from conformance/tolerances.toml (DESIGN §6)."""

from __future__ import annotations

import fnmatch
import math
import tomllib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import torch

from golden.compare import budget as drift_budget

TOLERANCES_PATH = Path(__file__).with_name("tolerances.toml")
DTYPE_NAMES = {torch.float64: "float64", torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    reason: str = "default (torch.testing.assert_close)"
    #: Normwise term (half precision): also allowed, ``norm_ulps * eps(dtype) * max|expected|`` of the tensor.
    norm_ulps: float = 0.0


@lru_cache(maxsize=None)
def _table(path: Path = TOLERANCES_PATH) -> dict:
    table = tomllib.loads(path.read_text())
    for i, override in enumerate(table.get("override", [])):
        missing = {"component", "output", "dtype", "rtol", "atol", "reason"} - set(override)
        if missing:
            raise ValueError(f"{path}: override #{i} lacks {sorted(missing)} (every override needs a reason)")
    return table


def policy_name(dtype: torch.dtype, autocast: bool = False) -> str:
    """The name of a comparison policy in tolerances.toml: the dtype's (``"bfloat16"``), or under
    ``--autocast`` the mixed-precision one (``"autocast-bfloat16"``)."""
    return f"autocast-{DTYPE_NAMES[dtype]}" if autocast else DTYPE_NAMES[dtype]


def tolerance(component: str, output: str, dtype: torch.dtype, reduction_terms: int = 1, *,
              autocast: bool = False) -> Tolerance:
    """The tolerance of one output path of a component for a run in ``dtype`` (with ``autocast``: a float32 run
    inside ``torch.autocast(dtype)``, whose policy extends that of ``dtype``; tolerances.toml, "Mixed precision")."""
    name = DTYPE_NAMES[dtype]
    # An autocast policy looks up its own entries first, then those of its half dtype.
    names = (policy_name(dtype, True), name) if autocast else (name,)
    table = _table()
    normwise = table.get("normwise", {})
    normwise_name = next((n for n in names if n in normwise), name)
    norm_ulps = float(normwise.get(normwise_name, 0.0))
    if dtype == torch.float64:
        # Against a fixture written on another machine, the reference itself moves by up to its drift budget
        # (golden/drift.toml): the float64 comparison allows at least that, as `python -m golden check` does.
        norm_ulps = max(norm_ulps, drift_budget(component).normwise_ulps)
    default = next(table["default"][n] for n in names if n in table["default"])
    tol = Tolerance(**default, norm_ulps=norm_ulps)
    if dtype == torch.float64:
        tol = replace(tol, reason=f"{tol.reason}, + {norm_ulps:g} float64 ULPs of the tensor's largest value "
                                  f"(the golden drift budget of {component})")
    elif norm_ulps:
        tol = replace(tol, reason=f"{tol.reason}, + {norm_ulps:g} {name} ULPs of the tensor's largest value "
                                  f"({normwise_name} normwise term)")
    overrides = table.get("override", [])
    match = next((o for n in names for o in overrides
                  if fnmatch.fnmatchcase(component, o["component"]) and fnmatch.fnmatchcase(output, o["output"])
                  and fnmatch.fnmatchcase(n, o["dtype"])), None)
    if match is not None:
        tol = Tolerance(match["rtol"], match["atol"], match["reason"], float(match.get("norm_ulps", norm_ulps)))
    factor = 1.0 + math.log2(reduction_terms) if reduction_terms > 1 else 1.0
    reason = tol.reason + (f"; x{factor:.3g} for a sum of {reduction_terms} terms" if factor > 1 else "")
    return Tolerance(tol.rtol * factor, tol.atol * factor, reason, tol.norm_ulps * factor)


def tie_threshold(cost: torch.Tensor, dtype: torch.dtype) -> float:
    """Total-cost difference below which two matchings count as tied (see tolerances.toml [matching])."""
    ulps = _table()["matching"]["tie_ulps"]
    k = min(cost.shape) if cost.dim() == 2 else 1
    scale = max(1.0, float(cost.abs().max())) if cost.numel() else 1.0
    return ulps * torch.finfo(dtype).eps * scale * max(k, 1)
