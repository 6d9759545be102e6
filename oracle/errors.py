"""The one exception the reference raises for bad input."""


class OracleInputError(ValueError):
    """An input the reference refuses: wrong shape, dtype or range, NaN/inf, or an undefined value.

    The message names the argument, what was expected and what was found, so that a conformance
    failure caused by a malformed case reads as such and never as a silent wrong number.
    """
