"""The built-in adapter: the reference itself, through the same path as any implementation.

It runs every component of components/contract.py in whatever dtype and device the suite asks for
(the reference converts its inputs to float64 on CPU), so `pytest conformance` checks the suite's
own plumbing (fixtures, casting, comparison, reports) against the reference.
"""

from __future__ import annotations

import oracle
from components.contract import COMPONENTS

from .base import Adapter


def make_adapter() -> Adapter:
    return Adapter(name="oracle", version=oracle.__version__,
                   components={name: comp.call for name, comp in COMPONENTS.items()}, profiles=None)
