"""The CLI's shape: every command has help with an example, user errors are one line, TF stays out."""

import subprocess
import sys

import click
from click.testing import CliRunner

from device.cli import main


def walk(group: click.Group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, (*prefix, name))


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    seen = list(walk(main))
    assert seen, "no commands registered"
    for path, cmd in seen:
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert cmd.help and cmd.help.strip(), f"{' '.join(path)} has no help"
        assert "biolock " in result.output and "xample" in result.output, f"{' '.join(path)} help lacks an example"


def test_bad_config_is_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "biolock.toml"
    cfg.write_text('[matching]\nsecurity = "lax"\n')
    result = CliRunner().invoke(main, ["--config", str(cfg), "data", "--help"])
    # --help is eager and exits before the config is read; a real subcommand must fail:
    result = CliRunner().invoke(main, ["--config", str(cfg), "data", "info", str(tmp_path)])
    assert result.exit_code == 2
    assert "matching.security" in result.output
    assert "Traceback" not in result.output


def test_help_and_device_commands_do_not_import_tensorflow():
    code = (
        "import sys; from click.testing import CliRunner; from device.cli import main;"
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output;"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
