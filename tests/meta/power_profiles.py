"""A pytest plugin for the power runs (tests/meta/power.py) and the meta tests that ask only whether a fault fails
(suite_runs.CI_NO_SHRINK): the suite's hypothesis profiles without shrinking.

``ci-no-shrink`` and ``dev-no-shrink`` are ``ci`` and ``dev`` (same examples, same count) minus the shrink phase:
whether a test fails does not depend on shrinking its failing example, which is most of a failing test's time."""

from __future__ import annotations

from hypothesis import Phase, settings

from conformance.hypothesis_profiles import register_profiles

register_profiles()
for _name in ("ci", "dev"):
    settings.register_profile(f"{_name}-no-shrink", settings.get_profile(_name),
                              phases=[p for p in Phase if p != Phase.shrink])
