"""The case catalogue: every golden case, and how the reference runs one.

The cases are data in golden/tables/, one module per area mirroring the conformance modules
(``golden/tables/boxes.py`` holds the cases ``conformance/test_boxes.py`` runs, and so on); golden/case.py has
the :class:`~golden.case.Case` record and the input builders. A case records its component, profile (the
conventions), config and seed; its inputs come from ``numpy.random.Generator(PCG64(seed))`` or are written
out (edge cases, tagged ``edge:<what>``). Outputs are the reference's canonical outputs
(components/contract.py), with the gradients of losses with respect to their float inputs
(``grad.<input path>``), since gradients are part of conformance (DESIGN §6). This module concatenates the
tables and checks them (unique names, known components, a random and an edge case for every component).
"""

from __future__ import annotations

import functools

from components.contract import COMPONENTS, reference_outputs

from .case import Case, Inputs, f64, i64, rand_cxcywh, rand_logits, rand_targets, rand_xyxy
from .tables import (anchor_head, anchors_coders, boxes, criteria_detr, losses, masks_position, matching,
                     transformer_heads, yolov8)

__all__ = ["Case", "Inputs", "catalogue", "components_without_cases", "f64", "i64", "rand_cxcywh", "rand_logits",
           "rand_targets", "rand_xyxy", "run_case"]

#: The case tables, in the order of the catalogue.
TABLES = (boxes, losses, matching, criteria_detr, masks_position, transformer_heads, anchors_coders, anchor_head,
          yolov8)


def run_case(case: Case) -> tuple[Inputs, dict]:
    """The case's inputs and the reference's outputs (with gradients) for them."""
    inputs = case.inputs()
    return inputs, reference_outputs(case.component, inputs, case.config, case.profile)


@functools.lru_cache(maxsize=1)
def catalogue() -> tuple[Case, ...]:
    """Every case, in a fixed order; names are unique."""
    cases = tuple(case for table in TABLES for case in table.cases())
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
