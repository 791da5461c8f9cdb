"""Errors a user can act on.  The CLI prints them as one line, never as a traceback."""

from __future__ import annotations

from pathlib import Path


class SovtpError(Exception):
    """Base class for errors with a message meant for the user."""


class MediaError(SovtpError):
    """A file that cannot be read as the media it claims to be."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read media {self.path}: {reason}")


class MediaTooLargeError(MediaError):
    """A picture or video frame over the pixel cap (a decompression bomb, or a scan that needs
    ``SOVTP_MAX_PIXELS`` raised): refused from its header, before its pixels are decoded."""


class ModelAssetError(SovtpError):
    """A model file that is missing, cannot be fetched, or fails its checksum."""


class PromptError(SovtpError):
    """A prompt spec or template that cannot be loaded or rendered."""


class BackendError(SovtpError):
    """A backend that cannot be set up (missing extra, unreachable server, unknown model)."""


class DeidError(SovtpError):
    """De-identification could not guarantee that no face leaves: the request is not sent."""
