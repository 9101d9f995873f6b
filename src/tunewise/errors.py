"""Domain errors. Raised anywhere in the library, turned into one-line messages once, at the CLI edge.

Every message should name the file, line or setting to fix. `exit_code` is what the CLI exits with.
"""

from __future__ import annotations


class TunewiseError(Exception):
    """Base class: a problem the user can fix. The CLI prints `str(err)` on one line and exits 2."""

    exit_code = 2


class ConfigError(TunewiseError):
    """A missing, malformed or invalid configuration file or option."""


class ModelNotFoundError(TunewiseError):
    """A model name or path that cannot be resolved offline."""


class StoreError(TunewiseError):
    """The store (database) cannot be opened, migrated or queried."""


class NotFoundError(TunewiseError):
    """A dataset, run, evaluation or deployment id that the store does not hold."""


class DataError(TunewiseError):
    """Input data that cannot be used as given (file, line and reason in the message)."""


class TrainingError(TunewiseError):
    """A training job that cannot start or that failed."""


class ProviderError(TunewiseError):
    """A managed provider (OpenAI, Together, ...) refused a request or a job failed."""


class EvaluationError(TunewiseError):
    """An evaluation that cannot run as asked."""


class GateFailed(TunewiseError):
    """A check that found a blocking problem (for example a contaminated eval set); exits 1 so pipelines can gate on it."""

    exit_code = 1


class SettingMovedWarning(UserWarning):
    """A workspace file uses a setting under its old name: read from there this time, the file should move it."""
