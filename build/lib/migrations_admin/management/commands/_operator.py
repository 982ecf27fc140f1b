"""What the migration commands share: the `cli:<os user>` actor and errors shown as command errors."""

import getpass
from collections.abc import Callable
from typing import TypeVar

from django.core.management.base import CommandError

from migrations_admin.errors import MigrationError

Result = TypeVar("Result")


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def run_action(action: Callable[..., Result], *args, **kwargs) -> Result:
    """Calls the action; a refusal becomes a CommandError (exit code 1) with the action's message."""
    try:
        return action(*args, **kwargs)
    except MigrationError as error:
        raise CommandError(f"{error.code}: {error.message}") from error
