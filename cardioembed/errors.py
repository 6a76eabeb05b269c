"""Errors a user can act on: a message that names what was wrong and says what to do,
which the command line prints without a stack trace."""


class InputError(ValueError):
    """A problem with a file, folder or parameter that the user gave."""


class ParameterError(InputError):
    """A parameter has a value the study cannot use."""

    def __init__(self, name: str, value, expected: str):
        self.name = name
        super().__init__(f"parameter {name!r} = {value!r}: {expected}")


def check_int(name: str, value, minimum: int, expected: str) -> int:
    """`value`, a whole number >= `minimum` (a text or float is refused, not converted)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ParameterError(name, value, expected)
    return value


def check_number(name: str, value, low: float, high: float, expected: str) -> float:
    """`value`, a number in [low, high], as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ParameterError(name, value, expected)
    return float(value)
