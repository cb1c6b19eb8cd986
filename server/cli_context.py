"""What the ``isocheck`` command hands its subcommands through click's context object.

The settings are read once, on first use, so ``--help`` works without a configuration, and a
bad ``ISOCHECK_*`` variable is a one-line click error rather than a traceback. A subcommand
takes them with :data:`pass_cli` instead of importing the command group (which sits above every
package and imports them all).
"""

from __future__ import annotations

import click

from server.config import ConfigError, Settings, load_settings


class CliContext:
    """The context object (``ctx.obj``) of the ``isocheck`` group and of every subcommand."""

    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings()
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from exc
            except ValueError as exc:  # pydantic validation of an ISOCHECK_* variable
                raise click.ClickException(f"invalid ISOCHECK_* setting:\n{exc}") from exc
        return self._settings


# ``ensure=True``: a subcommand invoked on its own (tests, ``python -m``) gets a fresh context.
pass_cli = click.make_pass_decorator(CliContext, ensure=True)
