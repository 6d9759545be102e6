"""Deprecated path of :mod:`components.contract` (the component contract left the fixture package); it
works for one release and warns. Import ``components.contract``."""

import sys
import warnings

from components import contract as _moved

warnings.warn("golden.components is deprecated: import components.contract", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
