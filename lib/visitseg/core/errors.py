"""Named exceptions. Every failure a user can cause maps to one of these, so the CLI can print
one paragraph that says what is wrong and how to fix it, and exit non-zero before anything is written."""


class VisitsegError(Exception):
    """Base class of every error visitseg raises on purpose. The CLI exits with `exit_code`."""

    exit_code = 2


class ConfigError(VisitsegError):
    """A configuration file, `--set` override or command-line argument is unknown, mistyped or impossible."""


class ModelNotFoundError(ConfigError):
    """A model folder holds no `visitseg_model.json`: a wrong path, or a model of a visitseg too old to score.
    Only this means "no usable previous model"; a read that is forbidden or throttled raises its own error."""


class InputSchemaError(VisitsegError):
    """The input lacks a required column, or a column has the wrong type."""


class EmptyInputError(VisitsegError):
    """No rows are left to work on (no input files, or none inside the date window)."""


class DataQualityError(VisitsegError):
    """The input violates a guardrail: null or duplicate keys, negative counts or revenue."""


class GrainError(DataQualityError):
    """A table that must hold one row per key holds more (a join multiplied rows, or keys repeat)."""


class DeltaUnavailableError(VisitsegError):
    """The native Delta writer was asked for but the Spark session has no Delta Lake jars."""


class DeltaTableError(VisitsegError):
    """A Delta table cannot be read or committed as asked (unsupported features, schema mismatch)."""


class RunInProgressError(VisitsegError):
    """Another live process is writing the same run id into the same output: the two would mix their tables."""


class DriftDetected(VisitsegError):
    """`--fail-on-drift`: a drift metric is above its threshold. Raised after every table is written, so a
    scheduler can alert on the exit status and still read the results."""

    exit_code = 3
