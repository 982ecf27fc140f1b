"""The errors of the migration control plane: each has a stable `code` and the HTTP status the API answers
with (they are `exchange.errors.DomainError`s); management commands show the message."""

from exchange.errors import DomainError


class MigrationError(DomainError):
    """An operator action or automatic step that cannot be done, and why."""

    code = "migration_error"
    status_code = 409


class UnknownPair(MigrationError):
    """No trading pair has this symbol."""

    code = "unknown_pair"
    status_code = 400

    def __init__(self, symbol: str, *, status_code: int | None = None) -> None:
        super().__init__(f"unknown pair {symbol!r}", field="pair", status_code=status_code)


class InvalidPercentage(MigrationError):
    """A percentage outside 0..the pair's configured maximum."""

    code = "percentage_out_of_range"
    status_code = 400


class MigrationsDisabled(MigrationError):
    """Adaptive order books are switched off (admin settings or ADAPTIVE_ORDER_BOOKS_ENABLED=false)."""

    code = "migrations_disabled"

    def __init__(self) -> None:
        super().__init__("adaptive order books are disabled: enable them in the admin's migration settings "
                         "and make sure ADAPTIVE_ORDER_BOOKS_ENABLED is not false")


class PlanStateError(MigrationError):
    """The plan (or the pair's engine) is not in a state that allows this action."""

    code = "invalid_plan_state"
