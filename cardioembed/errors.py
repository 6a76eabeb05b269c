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
