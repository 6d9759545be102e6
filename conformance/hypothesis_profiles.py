"""Hypothesis settings profiles shared by tests/ and conformance/ (DESIGN §8).

- ``dev``: quick local runs (50 examples, the default 200 ms deadline relaxed to 2 s because the
  first call into torch is slow).
- ``ci``: derandomized (the same examples every run, so CI is reproducible), no deadline,
  200 examples, failing examples printed with their reproduction blob.
- ``thorough``: 2000 examples, no deadline, for a nightly or a hunt for a bug.

Selected with ``--hypothesis-profile=NAME`` or the ``HYPOTHESIS_PROFILE`` environment variable;
otherwise ``ci`` when the ``CI`` environment variable is set and ``dev`` elsewhere.

Hypothesis (6.131 on) also draws, with probability 0.05 per choice, constants it collects from the source of every
local module imported so far (``hypothesis.internal.conjecture.providers._get_local_constants``). The suite's local
modules are its own and the adapters the run imports, so a derandomized example would move whenever any constant
anywhere in the project changes, or another adapter is imported -- a strict known difference on a generated test
could pass at one commit and fail at the next with nothing of its own changed. :func:`register_profiles` turns that
pool off (hypothesis' global constants, such as 0, -1, inf and NaN, stay), so that a derandomized example depends on
its test's strategies only; tests/meta/test_suite_reliability.py checks that the hook still exists.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_NAMES = ("dev", "ci", "thorough")


def without_local_constants() -> None:
    """Draw no constants from the project's own source (module docstring). A hypothesis without the hook raises
    AttributeError here: the suite's reproducibility depends on it."""
    from hypothesis.internal.conjecture import providers
    from hypothesis.internal.conjecture.choice import float_to_int
    pool = providers._local_constants
    empty = type(pool)(integers=type(pool.integers)(), floats=type(pool.floats)(key=float_to_int),
                       bytes=type(pool.bytes)(), strings=type(pool.strings)())
    providers._get_local_constants = lambda: empty


def register_profiles() -> None:
    without_local_constants()
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
