"""The built-in adapter: the reference itself, through the same path as any implementation.

It runs every component of components/contract.py in whatever dtype and device the suite asks for
(the reference converts its inputs to float64 on CPU), so `pytest conformance` checks the suite's
own plumbing (fixtures, casting, comparison, reports) against the reference. On a rank of a process group
(``--world-size``) its rank-dependent components gather the other ranks' statistics themselves.
"""

from __future__ import annotations

import torch.distributed as dist

import oracle
from components import ranks
from components.contract import COMPONENTS

from .base import Adapter


def _in_group(component: str, call):
    """On a rank of a process group (``--world-size``), a rank-dependent component all-gathers the other
    ranks' statistics and gives them to the reference, as the library's all-reduce would."""
    def run(inputs, config, profile):
        if dist.is_available() and dist.is_initialized():
            inputs = ranks.with_group_world(component, inputs, config, profile)
        return call(inputs, config, profile)
    return run


def make_adapter() -> Adapter:
    return Adapter(name="oracle", version=oracle.__version__,
                   components={name: _in_group(name, comp.call) if ranks.rank_dependent(name) else comp.call
                               for name, comp in COMPONENTS.items()}, profiles=None)
