"""Helpers shared by the conformance test modules."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

import golden


def golden_params(*prefixes: str) -> list:
    """A pytest parameter per golden fixture whose component starts with one of ``prefixes``."""
    return [pytest.param(case, id=case.name) for case in golden.cases() if case.component.startswith(prefixes)]


#: Generated tests record their figures on the pytest item, which is shared by every example on
#: purpose (the worst example is kept); hence the function-scoped `request` is safe here.
generated = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
