"""The `shopbell` command's setup and database commands, run as a user would."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from daemon import __version__
from daemon.admin.cli import cli
from daemon.config import default_config_path


def shopbell(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_lists_the_commands() -> None:
    result = shopbell("--help")
    assert result.exit_code == 0
    for name in ("run", "init", "config", "db", "token", "version"):
        assert f"  {name} " in result.output


def test_version() -> None:
    result = shopbell("version")
    assert result.exit_code == 0
    assert result.output.startswith(f"shopbell {__version__}\n")
    assert "sqlite" in result.output


def test_init_writes_config_and_token_and_never_overwrites(tmp_path: Path) -> None:
    result = shopbell("init")
    assert result.exit_code == 0, result.output
    config = default_config_path()
    assert config.read_text() == (Path(__file__).resolve().parents[2] / "config.toml").read_text()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    token_line = next(line for line in result.output.splitlines() if "API token" in line)
    token_path = Path(token_line.split(": ", 1)[1].split(" ")[0])
    token = token_path.read_text().strip()
    assert len(token) >= 32
    assert token not in result.output
    assert stat.S_IMODE(token_path.stat().st_mode) == 0o600

    config.write_text("# mine\n")
    again = shopbell("init")
    assert again.exit_code == 1
    assert "already exists" in again.output and "--force" in again.output
    assert config.read_text() == "# mine\n"

    forced = shopbell("init", "--force")
    assert forced.exit_code == 0
    assert "[api]" in config.read_text()
    assert token_path.read_text().strip() == token, "init --force keeps the existing token"


def test_init_to_explicit_path(tmp_path: Path) -> None:
    target = tmp_path / "etc" / "shop.toml"
    assert shopbell("--config", str(target), "init").exit_code == 0
    assert target.exists()
    assert not default_config_path().exists()


def test_config_check_valid_masks_secrets(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config("[api]\nport = 9100\n")
    monkeypatch.setenv("SHOPBELL_API_TOKEN", "a-secret-token-from-env")
    result = shopbell("--config", str(path), "config", "check")
    assert result.exit_code == 0, result.output
    assert f"# config: {path} is valid" in result.output
    assert "port = 9100" in result.output
    assert 'token = "********"' in result.output
    assert "a-secret-token-from-env" not in result.output
    assert "# from the environment: api.token" in result.output


def test_config_check_invalid(write_config: Callable[..., Path]) -> None:
    path = write_config("[api]\nprot = 1\n")
    result = shopbell("--config", str(path), "config", "check")
    assert result.exit_code == 2
    assert str(path) in result.output
    assert "api.prot: unknown key (did you mean 'port'?)" in result.output


def test_db_migrate_then_check_then_backup(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_config("")
    first = shopbell("--config", str(path), "db", "migrate")
    assert first.exit_code == 0, first.output
    assert "applied" in first.output and "m001_" in first.output
    again = shopbell("--config", str(path), "db", "migrate")
    assert again.exit_code == 0
    assert "schema up to date" in again.output

    check = shopbell("--config", str(path), "db", "check")
    assert check.exit_code == 0, check.output
    assert "integrity: ok" in check.output
    assert "0 pending" in check.output

    database = tmp_path / "data" / "shopbell.db"
    with sqlite3.connect(database) as conn:
        conn.execute(
            "INSERT INTO subscribers (name, phone, created_at, updated_at) "
            "VALUES ('Ada', '+33612345678', '2026-01-01T00:00:00+00:00', "
            "'2026-01-01T00:00:00+00:00')"
        )
    conn.close()
    dest = tmp_path / "backups" / "copy.db"
    dest.parent.mkdir()
    backup = shopbell("--config", str(path), "db", "backup", str(dest))
    assert backup.exit_code == 0, backup.output
    with sqlite3.connect(dest) as copy:
        assert copy.execute("SELECT name FROM subscribers").fetchall() == [("Ada",)]
    copy.close()
    refused = shopbell("--config", str(path), "db", "backup", str(dest))
    assert refused.exit_code == 1
    assert str(dest) in refused.output


def test_db_check_reports_a_newer_schema(write_config: Callable[..., Path], tmp_path: Path) -> None:
    path = write_config("")
    assert shopbell("--config", str(path), "db", "migrate").exit_code == 0
    with sqlite3.connect(tmp_path / "data" / "shopbell.db") as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('shopbell', 'm999_future', '2030-01-01')"
        )
    conn.close()
    result = shopbell("--config", str(path), "db", "check")
    assert result.exit_code == 1
    assert "unknown: m999_future" in result.output


def test_db_commands_on_a_file_that_is_not_a_database(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_config("")
    data = tmp_path / "data"
    data.mkdir()
    (data / "shopbell.db").write_text("hello")
    for command in (["db", "migrate"], ["db", "check"], ["db", "backup", str(tmp_path / "b.db")]):
        result = shopbell("--config", str(path), *command)
        assert result.exit_code == 1, command
        assert "error:" in result.output and str(data / "shopbell.db") in result.output
    assert (data / "shopbell.db").read_text() == "hello"
    assert not (tmp_path / "b.db").exists()


def test_token_prints_the_generated_token_or_the_configured_one(
    write_config: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config("")
    first = shopbell("--config", str(path), "token")
    assert first.exit_code == 0
    token = first.output.strip()
    assert token == (tmp_path / "data" / "api_token").read_text().strip()
    assert shopbell("--config", str(path), "token").output.strip() == token
    monkeypatch.setenv("SHOPBELL_API_TOKEN", "configured-token-123456")
    assert shopbell("--config", str(path), "token").output.strip() == "configured-token-123456"


def test_pdu_decode_prints_json_with_and_without_smsc_prefix() -> None:
    import json

    # The classic "hellohello" SMS-SUBMIT, with the empty SMSC prefix "00".
    bare = shopbell("pdu", "decode", "11000B916407281553F80000AA0AE8329BFD4697D9EC37")
    prefixed = shopbell("pdu", "decode", "0011000B916407281553F80000AA0AE8329BFD4697D9EC37")
    assert bare.exit_code == 0 and prefixed.exit_code == 0
    for result in (bare, prefixed):
        decoded = json.loads(result.output)
        assert decoded["type"] == "submit"
        assert decoded["number"] == "+46708251358"
        assert decoded["text"] == "hellohello"


def test_pdu_encode_then_decode_round_trips_a_long_text() -> None:
    import json

    text = "Surprise bags are in! " * 10
    encoded = shopbell("pdu", "encode", "--to", "+33612345678", text)
    assert encoded.exit_code == 0
    parts = json.loads(encoded.output)
    assert len(parts) == 2
    decoded = [json.loads(shopbell("pdu", "decode", part["pdu"]).output) for part in parts]
    assert "".join(d["text"] for d in decoded) == text
    assert [d["concat"]["seq"] for d in decoded] == [1, 2]
    assert all(d["number"] == "+33612345678" for d in decoded)


def test_pdu_decode_refuses_garbage_plainly() -> None:
    result = shopbell("pdu", "decode", "0011")
    assert result.exit_code == 1
    assert result.output.startswith("error: not a PDU shopbell can read")
    assert "Traceback" not in result.output
