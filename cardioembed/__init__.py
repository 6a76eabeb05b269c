"""cardioembed: the code that the study's notebooks share."""

__version__ = "0.1.0"
