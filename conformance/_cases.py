"""Helpers shared by the conformance test modules."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

import golden


def golden_params(*prefixes: str) -> list:
    """A pytest parameter per golden fixture whose component starts with one of ``prefixes``."""
    return [pytest.param(case, id=case.name) for case in golden.cases() if case.component.startswith(prefixes)]


#: Generated tests record their figures on the pytest item, which is shared by every example on
#: purpose (the worst example is kept); hence the function-scoped `request` is safe here. A draw the
#: adapter declines is rejected (conformance/runner.py ``per_draw``), so an adapter that provides few of
#: a test's variants filters out most draws: that is the adapter's scope, not a badly written test, so
#: ``filter_too_much`` is suppressed and the plugin reports the counts (supported draws / draws) instead.
generated = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                            HealthCheck.filter_too_much])


def costly(divisor: int):
    """:data:`generated` with the active profile's ``max_examples`` divided by ``divisor`` (at least 10), for a
    test whose example costs a whole loss of a batch: ci's 200 examples become ``200 // divisor``, a thorough
    run's 2000 ``2000 // divisor``. Read when the test module is imported, after the plugin loaded the profile."""
    return settings(generated, max_examples=max(10, settings.default.max_examples // divisor))
