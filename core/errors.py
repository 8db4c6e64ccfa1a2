"""Errors a user can act on.

Core code raises these with a message that names the file and the problem; the Processing layer
turns them into QgsProcessingException unchanged, so the message is what the user reads.
"""


class MineSARError(Exception):
    """Bad input or a request that cannot be carried out."""


class Cancelled(MineSARError):
    """The user cancelled the work; whatever was half-written has been removed."""

    def __init__(self, message="Cancelled by the user."):
        super().__init__(message)
