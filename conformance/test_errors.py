"""Error conformance: on an input the contract rejects, the candidate raises, as the reference does.

The invalid inputs are data (conformance/invalid_inputs.py); returning outputs for one fails as
*accepted-invalid-input*, so a silent number where the reference has none never passes.
"""

from __future__ import annotations

import pytest

from conformance.invalid_inputs import INVALID_INPUTS


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in INVALID_INPUTS])
def test_invalid_input_raises(case, detconf, request):
    detconf.check_invalid(case, request)
