"""The triggers' exceptions, all under one root."""

from agogosml.errors import AgogosmlError


class TriggerError(AgogosmlError):
    """Root of every error the triggers raise."""


class RulesError(TriggerError):
    """A rules file (or one of its selectors) cannot be used; the message names the rule
    and the field. Raised at start-up, so a bad file stops the monitor before it runs."""
