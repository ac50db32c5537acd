"""Exit codes of the ``authx`` command, and the errors that carry them.

A library error that a person can fix (a bad setting, a store that does not answer)
becomes one line on stderr and an exit code a script can test, never a traceback.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from authx.exceptions import (
    BadConfigurationError,
    KeySourceUnavailableError,
    StoreUnavailableError,
)

__all__ = [
    "CommandError",
    "CommandGroup",
    "ConfigurationFailed",
    "ExitCode",
    "FilesExist",
    "StoreNotShared",
    "StoreUnreachable",
]


class ExitCode(IntEnum):
    """What a script can tell from the exit status (the table in :mod:`authx.cli`)."""

    OK = 0
    TOKEN_INVALID = 1
    USAGE = 2
    CONFIGURATION = 3
    STORE_UNAVAILABLE = 4
    STORE_NOT_SHARED = 5
    FILE_EXISTS = 6


class CommandError(click.ClickException):
    """An expected failure: one line on stderr, and the exit code of its kind."""

    exit_code = ExitCode.TOKEN_INVALID


class ConfigurationFailed(CommandError):
    """A ``JWT_*`` setting is invalid, or a key the command needs is missing."""

    exit_code = ExitCode.CONFIGURATION


class StoreUnreachable(CommandError):
    """The store (or an identity provider's keys) did not answer."""

    exit_code = ExitCode.STORE_UNAVAILABLE


class StoreNotShared(CommandError):
    """The store is process-local: what the command writes there reaches no server."""

    exit_code = ExitCode.STORE_NOT_SHARED


class FilesExist(CommandError):
    """Key files are already there and ``--force`` was not given."""

    exit_code = ExitCode.FILE_EXISTS


def _problems(exc: ValidationError) -> str:
    # Locations and messages only: the input values may be keys.
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )


class CommandGroup(click.Group):
    """The root group: library errors become a message and an exit code, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BadConfigurationError as exc:
            raise ConfigurationFailed(exc.message) from None
        except ValidationError as exc:
            raise ConfigurationFailed(_problems(exc)) from None
        except SettingsError as exc:
            raise ConfigurationFailed(str(exc)) from None
        except (StoreUnavailableError, KeySourceUnavailableError) as exc:
            raise StoreUnreachable(exc.message) from None
