"""The model loop's exceptions, all under agogosml's root exception."""

from agogosml.errors import AgogosmlError, NotReadyError


class ModelLoopError(AgogosmlError):
    """Training, gating or moving aliases could not be done; the message says why."""


class DatasetError(ModelLoopError):
    """The dataset file or its columns do not fit the training configuration."""


class RegistryError(ModelLoopError):
    """An alias move is impossible (no challenger to promote, no previous champion)."""


class RetrainInProgressError(ModelLoopError, NotReadyError):
    """Another retrain is running in this process; try again when it has finished."""
