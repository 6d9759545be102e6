"""detconf's float64 reference for detection loss pipelines (see DESIGN.md §3).

Pure functions of their inputs, float64 on CPU; conventions on which libraries differ are
arguments (:mod:`oracle.conventions`); bad input raises :class:`OracleInputError`.
"""

from ._checks import TensorLike
from .errors import OracleInputError

__version__ = "0.1.0"
__all__ = ["OracleInputError", "TensorLike", "__version__"]
