"""Deprecated path of :mod:`components.dense_calls` (the component contract left the fixture package); it
works for one release and warns. Import ``components.dense_calls``."""

import sys
import warnings

from components import dense_calls as _moved

warnings.warn("golden.dense_calls is deprecated: import components.dense_calls", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = _moved
