"""Shared test configuration: hypothesis profiles and the third-party import policy."""

from __future__ import annotations

import importlib
import os
import shutil

import pytest
import torch
# pytester's in-process runs drop from sys.modules what they imported; torch._dynamo registers a C++ operator
# library when imported, and a second import after such a run fails ("Only a single TORCH_LIBRARY can be used
# to register the namespace _inductor_test"). Imported once here, it stays for every run.
import torch._dynamo
from hypothesis import settings

from conformance.hypothesis_profiles import default_profile_name, register_profiles

register_profiles()
settings.load_profile(default_profile_name())

# Literal test inputs (torch.tensor([0.3])) must be exact float64, not float32 roundings of the
# decimal. The reference's own conversion of other dtypes is tested in test_dtypes.py.
torch.set_default_dtype(torch.float64)


def import_or_skip(module: str, install: str):
    """Import a third-party library for a cross-check, or skip with the install command.

    With ``DETCONF_REQUIRE_THIRD_PARTY=1`` (set by .ci/run) a missing library is a failure, so CI
    can never go green by skipping the independent cross-checks.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        message = f"{module} is not importable ({err}); install it with: {install}"
        if os.environ.get("DETCONF_REQUIRE_THIRD_PARTY") == "1":
            pytest.fail(message + " (DETCONF_REQUIRE_THIRD_PARTY=1)", pytrace=False)
        pytest.skip(message)


def require_executable(name: str, install: str) -> str:
    """The path of a program a test runs (a headless browser), or skip with the install command; a failure
    under ``DETCONF_REQUIRE_THIRD_PARTY=1``, as for a library (:func:`import_or_skip`)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not on PATH; install it with: {install}"
        if os.environ.get("DETCONF_REQUIRE_THIRD_PARTY") == "1":
            pytest.fail(message + " (DETCONF_REQUIRE_THIRD_PARTY=1)", pytrace=False)
        pytest.skip(message)
    return path


def pytest_report_header(config):
    import scipy

    from oracle import __version__
    return (f"detconf {__version__}: hypothesis profile {settings.get_current_profile_name()!r}, "
            f"torch {torch.__version__}, scipy {scipy.__version__}, "
            f"third-party cross-checks "
            f"{'required' if os.environ.get('DETCONF_REQUIRE_THIRD_PARTY') == '1' else 'optional'}")


pytest_plugins = ["pytester"]
