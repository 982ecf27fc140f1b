"""The base of every error the back office reports to a user or operator by a stable code.

A service (placing orders, migrating a pair) raises a `DomainError` subclass; the API's exception handler
(`exchange.api.json_errors`) answers any of them as `{"error": {"code", "message", "fields"}}` with the error's
HTTP status, and management commands print the message. The control plane's errors derive from it too, so
the API needs no knowledge of them.
"""


class DomainError(Exception):
    """An operation that cannot be carried out: `code` is stable, `message` is for people, `field` names the
    input at fault (if one is), `status_code` is the HTTP status the API answers with."""

    code = "error"
    status_code = 400
    retry_after_seconds: int | None = None      # sent as `Retry-After` when the caller may simply try again

    def __init__(self, message: str, code: str | None = None, field: str | None = None,
                 status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.field = field
        self.status_code = status_code or self.status_code

    def fields(self) -> dict[str, str]:
        """Messages by the input they are about."""
        return {self.field: self.message} if self.field else {}
