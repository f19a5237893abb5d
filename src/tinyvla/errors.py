"""User-facing errors: the CLI prints these as one line and exits non-zero (no traceback)."""


class TinyVLAError(Exception):
    """A mistake in the user's input (config, files, data), reported without a traceback."""


class ConfigError(TinyVLAError):
    """Unknown key, bad value or unknown preset/policy type."""


class CheckpointError(TinyVLAError):
    """A checkpoint directory that is missing, incomplete or corrupt."""


class DataError(TinyVLAError):
    """A dataset or a batch that cannot be used as it is (bad shapes, NaN, wrong dtype)."""
