"""The privacy package's exceptions; all derive from agogosml's root error."""

from agogosml.errors import AgogosmlError


class PrivacyError(AgogosmlError):
    """Root of the errors raised by agogosml.privacy."""


class PolicyError(PrivacyError):
    """A policy cannot be loaded, or a record cannot be made to fit it; the message names the
    field. A record refused this way should go to the dead-letter path, never through."""


class KeyUnavailableError(PrivacyError):
    """The key a token or a policy needs is unknown or was destroyed."""


class TokenError(PrivacyError):
    """An encrypted token is malformed or fails authentication (tampered, wrong key)."""
