"""One error hierarchy for the whole bot.

`UserError` and its subclasses carry a message meant for the person who typed the command: it is shown
(ephemeral in Slack) and the command changes nothing. Anything else is an internal error: it is logged
with the request id and the user sees only "internal error, ref <id>".

Library exceptions (kubernetes, requests, slack_sdk) never travel past the module that wraps the library;
they are turned into one of these, raised ``from`` the original.
"""

from __future__ import annotations


class BotError(Exception):
    """Root of every error svcbot raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserError(BotError):
    """A problem with what the user asked for; the message is safe and useful to show them."""

    exit_code = 1


class UsageError(UserError):
    """The command text does not parse: unknown verb, bad flag, missing argument."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


class NotFound(UserError):
    """A service, environment, request or Kubernetes object that does not exist."""


class Forbidden(UserError):
    """The acting user may not do this (catalog access rules, or RBAC on the cluster)."""


class Conflict(UserError):
    """Someone else got there first: a held deploy lock, a request already decided."""


class RateLimited(UserError):
    """The user ran too many commands in the window the catalog allows."""


class BackendError(BotError):
    """A backend (a cluster, Loki, Slack) failed in a way the user should hear about by name."""


class BackendUnavailable(BackendError):
    """A backend did not answer, or answered with a server error; retrying later may work."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeadlineExceeded(BackendError):
    """The command ran out of its time budget (settings.command_deadline)."""


class CatalogError(BotError):
    """The catalog does not validate; carries every problem with its YAML path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
