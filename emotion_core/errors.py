"""Errors whose message is written for the person who uploaded the file, not for a developer."""


class MediaError(Exception):
    """The input cannot be analysed; ``str(err)`` is a complete, human sentence."""
