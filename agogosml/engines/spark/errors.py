"""The Spark engine's exceptions; all derive from agogosml's root error."""

from agogosml.errors import AgogosmlError


class SparkJobError(AgogosmlError):
    """Root of the errors raised by agogosml.engines.spark: the streaming query stopped with
    an error, or could not be started."""
