"""Hypothesis settings profiles shared by tests/ and conformance/ (DESIGN §8).

- ``dev``: quick local runs (50 examples, the default 200 ms deadline relaxed to 2 s because the
  first call into torch is slow).
- ``ci``: derandomized (the same examples every run, so CI is reproducible), no deadline,
  200 examples, failing examples printed with their reproduction blob.
- ``thorough``: 2000 examples, no deadline, for a nightly or a hunt for a bug.

Selected with ``--hypothesis-profile=NAME`` or the ``HYPOTHESIS_PROFILE`` environment variable;
otherwise ``ci`` when the ``CI`` environment variable is set and ``dev`` elsewhere.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_NAMES = ("dev", "ci", "thorough")


def register_profiles() -> None:
    settings.register_profile("dev", max_examples=50, deadline=2000)
    settings.register_profile("ci", max_examples=200, derandomize=True, deadline=None, database=None,
                              print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("thorough", max_examples=2000, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])


def default_profile_name() -> str:
    name = os.environ.get("HYPOTHESIS_PROFILE")
    if name:
        return name
    return "ci" if os.environ.get("CI") else "dev"
