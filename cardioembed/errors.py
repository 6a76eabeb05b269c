"""Errors that a user can act on.

Every problem with a user's input (a file, a folder, a parameter) is raised as
`InputError`, whose message names what was wrong and says what to do. The command
line prints the message alone, without a stack trace.
"""


class InputError(ValueError):
    """A problem with a file, folder or parameter that the user gave."""


class ParameterError(InputError):
    """A parameter has a value the study cannot use."""

    def __init__(self, name: str, value, expected: str):
        self.name = name
        self.value = value
        super().__init__(f"parameter {name!r} = {value!r}: {expected}")


def check_int(name: str, value, minimum: int, expected: str) -> int:
    """`value` as a whole number >= `minimum`, else a ParameterError naming `name` (a text
    or a float where a whole number belongs is refused, not converted)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ParameterError(name, value, expected)
    return value


def check_number(name: str, value, low: float, high: float, expected: str) -> float:
    """`value` as a number in [low, high], else a ParameterError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ParameterError(name, value, expected)
    return float(value)
