"""The docs stay true: every command has help and is in the README, every config key documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from daemon.admin.cli import cli
from daemon.config import Settings

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
CONFIG_LINES = (REPO / "config.toml").read_text(encoding="utf-8").splitlines()


def _commands(group: click.Group, prefix: str = "shopbell") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            found += _commands(command, path)
        else:
            found.append((path, command))
    return found


COMMANDS = _commands(cli)


def test_there_are_commands() -> None:
    names = {path for path, _ in COMMANDS}
    assert {"shopbell run", "shopbell db backup", "shopbell config check"} <= names


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_command_has_help_and_is_in_readme(path: str, command: click.Command) -> None:
    assert command.help, f"{path} has no help text"
    assert f"`{path}" in README, f"{path} is not in README.md"
    result = CliRunner().invoke(cli, [*path.split()[1:], "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in cli.commands:
        assert name in result.output


def _config_keys() -> list[tuple[str, int]]:
    keys: list[tuple[str, int]] = []
    section = ""
    for number, line in enumerate(CONFIG_LINES):
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped.strip("[]")
        elif "=" in stripped and not stripped.startswith("#"):
            keys.append((f"{section}.{stripped.split('=')[0].strip()}", number))
    return keys


def test_every_config_key_has_a_comment() -> None:
    for key, number in _config_keys():
        above = CONFIG_LINES[number - 1].strip()
        previous_keys_comment = above.startswith("#")
        assert previous_keys_comment, f"config.toml key {key} has no comment above it"


def test_config_toml_and_settings_have_the_same_keys() -> None:
    in_file = {key for key, _ in _config_keys()}
    in_code = {
        f"{section}.{key}"
        for section, field in Settings.model_fields.items()
        for key in field.annotation.model_fields  # type: ignore[union-attr]
    }
    assert in_file == in_code
    tomllib.loads("\n".join(CONFIG_LINES))  # and it parses


def test_readme_has_exactly_the_two_commands_and_ci_runs_the_test_one() -> None:
    blocks = [b.split("```", 1)[0].strip() for b in README.split("```sh\n")[1:]]
    install_and_run = [b for b in blocks if b.endswith("shopbell run")]
    install_and_test = [b for b in blocks if "pip install -e '.[test]'" in b]
    assert install_and_run == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/shopbell run"
    ]
    assert len(install_and_test) == 1 and install_and_test[0].endswith("pytest")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    found = re.search(r'grep -E "(.+?)" README.md', ci)
    assert found, ".ci/run no longer takes its test command from README.md"
    picked = [line for line in README.splitlines() if re.match(found.group(1), line)]
    assert picked[:1] == install_and_test
