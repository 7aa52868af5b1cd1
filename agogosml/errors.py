"""The package's exceptions. Every error agogosml raises derives from AgogosmlError.

HTTP status codes for them are chosen in one place: agogosml.web.errors.
"""


class AgogosmlError(Exception):
    """Root of every error raised by agogosml."""


class ConfigurationError(AgogosmlError):
    """A setting is missing or has a value the service cannot work with."""


class BadRequestError(AgogosmlError):
    """A client sent a body the service cannot read; the message says what is wrong."""


class PayloadTooLargeError(BadRequestError):
    """A request body or event count above the service's limit, refused before parsing."""


class UnsupportedMediaTypeError(BadRequestError):
    """A request body in a content type the endpoint does not read."""


class MethodNotAllowedError(BadRequestError):
    """A request with a method the path does not take; `allowed` lists those it does."""

    def __init__(self, message: str, allowed: str) -> None:
        super().__init__(message)
        self.allowed = allowed


class ModelInputError(BadRequestError):
    """The records do not fit the model's input schema."""


class NotFoundError(AgogosmlError):
    """A request named something that does not exist here."""


class ModelNotFoundError(NotFoundError):
    """A request named a model this service does not serve."""


class InternalError(AgogosmlError):
    """What an unexpected exception is answered as (500): its class, never its message,
    which may hold anything the failing code had in hand."""


class ModelOutputError(AgogosmlError):
    """The model answered something its metadata says it does not (a server error)."""


class NotReadyError(AgogosmlError):
    """The service cannot do the work yet (model not loaded, downstream unreachable)."""


class DownstreamError(AgogosmlError):
    """The next hop (app, writer, broker) did not acknowledge; the caller should retry."""


class StoreUnavailableError(DownstreamError):
    """A database the work needs (the monitor's event store, the subject key store) cannot
    be reached or did not take the write: an outage, retried like an unreachable next hop,
    never blamed on the records and never committed past."""


class BatchFailedError(DownstreamError):
    """The receiver answered but failed on this batch (HTTP 500): it may be the batch's
    records, not an outage. Retried like any DownstreamError, but it counts against the
    budget after which the reader splits the batch to isolate the records that fail."""


class CredentialsRefusedError(DownstreamError):
    """The next hop refused this service's token (401 or 403). A configuration error, not
    the records': retried like an outage, so nothing is dead-lettered or lost for it."""


class SinkError(DownstreamError):
    """The sink did not confirm a write."""


class RecordTooLargeError(BadRequestError):
    """Records the sink can never accept, however often they are retried. `refused` holds
    their positions in the batch when the sink knows them (the others were accepted);
    empty means every record of the batch should be taken as refused."""

    def __init__(self, message: str, refused: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.refused = refused


class InvalidRecordError(AgogosmlError):
    """A source record cannot become an event; it belongs in the dead-letter destination."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class UnauthorizedError(AgogosmlError):
    """A request without an accepted bearer token (or API key) for `realm`."""

    def __init__(self, message: str, realm: str) -> None:
        super().__init__(message)
        self.realm = realm
