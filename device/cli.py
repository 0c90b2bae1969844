"""The ``biolock`` command: a click group whose commands live one module each in ``device/commands/``.

Why discovery: each command module owns its own options and help, and adding one needs no edit here. Every
module in ``device.commands`` that defines ``command`` (a click Command or Group) is added. Command modules
must stay light: TensorFlow is only ever imported inside ``biolock train ...`` commands.

User errors (``BiolockError`` and the bridge's ``BridgeError``) become one line on stderr and their exit
code; tracebacks are kept for bugs.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from device import commands as _commands_pkg
from device import progress
from device.config import Config, config_path, load_config, resolve_state_dir
from device.errors import BiolockError
from device.logsetup import configure_logging
from device.nativelog import install_json_stderr

log = logging.getLogger("biolock")


def _user_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [BiolockError]
    try:
        from firmware_bridge.errors import BridgeError  # the bridge has its own tree (it runs on MicroPython)
    except ImportError:
        pass
    else:
        types.append(BridgeError)
    return tuple(types)


@dataclass
class AppContext:
    """What every command gets through ``click.pass_obj``."""

    config_file: Path | None = None
    state_dir_option: Path | None = None
    verbose: bool = False
    json_logs: bool = False
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        """The validated configuration, loaded on first use."""
        if self._config is None:
            self._config = load_config(self.config_file)
        return self._config

    @property
    def state_dir(self) -> Path:
        return resolve_state_dir(self.state_dir_option, self.config)


def _error(message: str, code: int) -> None:
    """The one error style: ``error: ...`` on one line of stderr, then the documented exit code (README table)."""
    message = " ".join(str(message).split())
    if len(message) > 1 and message[0].isupper() and not message[1].isupper():
        message = message[0].lower() + message[1:]  # click says "Missing option"; biolock says "missing option"
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _json_defaults(command: click.Command) -> dict[str, Any]:
    """A click default_map turning on every subcommand's own ``--json`` (so ``biolock --json status`` is JSON)."""
    out: dict[str, Any] = {}
    for name, sub in getattr(command, "commands", {}).items():
        if isinstance(sub, click.Group):
            nested = _json_defaults(sub)
            if nested:
                out[name] = nested
        else:
            for param in sub.params:
                if isinstance(param, click.Option) and "--json" in param.opts and param.name:
                    out[name] = {param.name: True}
    return out


def _global_json(args: list[str], group: click.Group) -> bool:
    """Whether ``--json`` was given to ``biolock`` itself (before the command name)."""
    for arg in args:
        if arg in group.commands:
            return False
        if arg == "--json":
            return True
    return False


class BiolockGroup(click.Group):
    """A group that reports user errors and click's usage errors as one ``error: ...`` line with their exit code."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        if _global_json(argv, self):
            install_json_stderr()  # from the start, so even a usage error of the group itself is a JSON line
        try:
            rv = super().main(argv, prog_name, complete_var, False, **extra)
        except click.exceptions.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):
                _error("interrupted", 130)
            _error("aborted: nothing was changed", 1)  # a confirmation answered "no" (or no terminal to ask on)
        except KeyboardInterrupt:
            _error("interrupted", 130)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _error(f"{exc.format_message().rstrip('.')}{where}", 2)
        except click.ClickException as exc:
            _error(exc.format_message(), 2)  # 1 is reserved for "rejected" (verify/identify)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _user_error_types() as exc:
            code = getattr(exc, "exit_code", 2)
            _error(str(exc), code if isinstance(code, int) and code >= 2 else 2)


@click.group(cls=BiolockGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="biolock.toml to use (default: $BIOLOCK_CONFIG, else built-in defaults).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where templates, keys and the audit log live (default: $BIOLOCK_STATE_DIR, the config, "
    "systemd's StateDirectory, else ~/.local/share/biolock).",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.option("--json", "json_logs", is_flag=True,
              help="JSON everywhere: one JSON object per stderr line (logs, progress, errors) and every command's "
              "result as JSON (as if its own --json were given).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or progress lines.")
@click.version_option(package_name="biolock")
@click.pass_context
def main(ctx: click.Context, config_file: Path | None, state_dir: Path | None, verbose: bool, json_logs: bool,
         quiet: bool) -> None:
    """biolock: fingerprint and finger-vein unlock for a door, cabinet or machine.

    \b
    Examples:
      biolock demo                         # the whole product on emulated hardware
      biolock data info ../shared/data     # what a dataset folder holds
      biolock --config /etc/biolock.toml run
    """
    app = AppContext(config_path(config_file), state_dir, verbose, json_logs)
    ctx.obj = app
    level = "info"
    as_json = json_logs
    if app.config_file is not None:
        level = app.config.logging.level  # validates the config early, before any command runs
        as_json = as_json or app.config.logging.json
    configure_logging(level, as_json, verbose)
    progress.set_quiet(quiet)
    if as_json:
        install_json_stderr()
        ctx.default_map = _json_defaults(ctx.command)


def _register_commands(group: click.Group) -> None:
    for info in sorted(pkgutil.iter_modules(_commands_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{_commands_pkg.__name__}.{info.name}")
        command = getattr(module, "command", None)
        if isinstance(command, click.Command):
            group.add_command(command)


_register_commands(main)
