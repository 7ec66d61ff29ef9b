"""The facegate error hierarchy: each expected failure is a FacegateError (one-line message)."""


class FacegateError(Exception):
    """Base of every error facegate raises on purpose; its message is shown to the user as is."""


class ConfigError(FacegateError):
    """The configuration is invalid; the message names the key."""


class StorageError(FacegateError):
    """The registry or the data directory cannot be read or written."""


class ModelError(FacegateError):
    """A model cannot be built, loaded or verified (missing file, bad hash, bad manifest)."""


class EnrollmentError(FacegateError):
    """An enrollment cannot be completed; nothing was stored."""


class CaptureError(FacegateError):
    """A frame source cannot be opened or read."""


class DataError(FacegateError):
    """A dataset (LFW tree, protocol file, image folder) is missing or malformed."""
