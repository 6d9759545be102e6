"""The platform a fixture is written or checked on: what decides the last bits of a float64 result.

The same code gives other last bits on another CPU kind, another ATen kernel set
(``ATEN_CPU_CAPABILITY``), another BLAS or BLAS code path (``MKL_CBWR``) or another torch build: vectorised
kernels and matrix products sum in another order. The manifest records this per fixture and
``python -m golden check`` prints it beside the checking platform when a fixture differs, so that a
reviewer can tell a machine's drift from a change of formula (docs/golden.md, "Platforms").
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as _platform
import re
from functools import lru_cache

import numpy as np
import safetensors
import scipy
import torch

import oracle


def versions() -> dict[str, str]:
    """The versions of the libraries a fixture's numbers come from."""
    return {"oracle": oracle.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "safetensors": safetensors.__version__}


@lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return _platform.processor() or _platform.machine()


def _blas() -> str:
    match = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return match.group(1) if match else "unknown"


def describe() -> dict[str, str]:
    """What the numbers of this process depend on: versions, CPU, ATen kernels, BLAS, threads."""
    return {**versions(), "machine": _platform.machine(), "cpu": _cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "blas": _blas(),
            "mkl_cbwr": os.environ.get("MKL_CBWR", ""), "threads": str(torch.get_num_threads())}


def key(description: dict[str, str]) -> str:
    """A short stable name of a platform description (the manifest's ``platforms`` table is keyed by it)."""
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:12]


def side_by_side(written: dict[str, str], checking: dict[str, str]) -> str:
    """A two-column table of the fields of two platforms, the differing ones marked ``*``."""
    fields = list(dict.fromkeys([*written, *checking]))
    rows = [("", "written on", "checked on")] + [
        (("* " if written.get(f) != checking.get(f) else "  ") + f, written.get(f, "-"), checking.get(f, "-"))
        for f in fields]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
