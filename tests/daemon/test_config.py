"""Configuration: precedence, environment overrides, and every problem reported at once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.config import (
    ConfigError,
    Settings,
    default_config_path,
    effective_toml,
    load_config,
    reference_config_text,
)

REPO = Path(__file__).resolve().parents[2]


def problems_of(path: Path | None, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return caught.value.problems


def test_no_file_gives_the_reference_defaults() -> None:
    from_nothing = load_config(None, {})
    from_reference = load_config(REPO / "config.toml", {})
    assert from_nothing.source is None
    assert from_nothing.settings == from_reference.settings == Settings()
    assert from_nothing.settings.api.port == 8765
    assert from_nothing.settings.api.host == "127.0.0.1"


def test_reference_text_is_the_repository_config() -> None:
    assert reference_config_text() == (REPO / "config.toml").read_text(encoding="utf-8")


def test_precedence_explicit_then_env_then_user_dir(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    explicit = write_config("[api]\nport = 9001\n", name="explicit.toml")
    via_env = write_config("[api]\nport = 9002\n", name="env.toml")
    user = default_config_path()
    user.parent.mkdir(parents=True)
    user.write_text("[api]\nport = 9003\n")

    environ = {"SHOPBELL_CONFIG": str(via_env)}
    assert load_config(explicit, environ).settings.api.port == 9001
    assert load_config(None, environ).settings.api.port == 9002
    assert load_config(None, {}).settings.api.port == 9003
    assert load_config(None, {}).source == user
    user.unlink()
    assert load_config(None, {}).settings.api.port == 8765


def test_environment_overrides_the_file(write_config: Callable[..., Path]) -> None:
    path = write_config('[api]\nport = 9001\n[logging]\nlevel = "INFO"\n')
    environ = {
        "SHOPBELL_API_PORT": "9100",
        "SHOPBELL_API_TOKEN": "a-secret-token-from-env",
        "SHOPBELL_LOGGING_LEVEL": "DEBUG",
        "SHOPBELL_API_CORS_ORIGINS": "http://a:3000, http://b:3000",
        "SHOPBELL_SHUTDOWN_API_SECONDS": "2.5",
    }
    loaded = load_config(path, environ)
    settings = loaded.settings
    assert settings.api.port == 9100
    assert settings.api.token.get_secret_value() == "a-secret-token-from-env"
    assert settings.logging.level == "DEBUG"
    assert settings.api.cors_origins == ("http://a:3000", "http://b:3000")
    assert settings.shutdown.api_seconds == 2.5
    assert "api.token" in loaded.env_keys


def test_settings_are_frozen() -> None:
    settings = load_config(None, {}).settings
    with pytest.raises(ValueError):
        settings.api.port = 1  # type: ignore[misc]


def test_every_problem_reported_at_once_with_key_path_and_file(
    write_config: Callable[..., Path],
) -> None:
    path = write_config(
        '[api]\nprot = 8765\nport = "8765"\nhost = "my-pc"\n'
        '[shop]\ntimezone = "Mars/Base"\n[logging]\nlevel = "LOUD"\n'
        "[shutdown]\napi_seconds = -1\n[shoop]\nname = 1\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    problems = caught.value.problems
    text = str(caught.value)
    assert str(path) in text
    assert len(problems) == 7
    joined = "\n".join(problems)
    assert "api.prot: unknown key (did you mean 'port'?)" in joined
    assert "api.port: expected a whole number, got text '8765'" in joined
    assert "api.host:" in joined and "my-pc" in joined
    assert "shop.timezone:" in joined and "IANA" in joined
    assert "logging.level: must be one of" in joined and "LOUD" in joined
    assert "shutdown.api_seconds: must be greater than 0" in joined
    assert "shoop: unknown section (did you mean 'shop'?)" in joined


def test_port_out_of_range() -> None:
    problems = problems_of(None, {"SHOPBELL_API_PORT": "70000"})
    assert problems == ["api.port: must be less than or equal to 65535 (got 70000)"]


def test_event_loop_is_one_of_two() -> None:
    problems = problems_of(None, {"SHOPBELL_API_EVENT_LOOP": "trio"})
    assert problems == ["api.event_loop: must be one of 'asyncio' or 'uvloop' (got 'trio')"]


def test_invalid_toml_names_the_line(write_config: Callable[..., Path]) -> None:
    path = write_config("[api]\nport = = 3\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith("not valid TOML")
    assert "line 5" in problems[0]


def test_missing_explicit_file(tmp_path: Path) -> None:
    problems = problems_of(tmp_path / "nope.toml")
    assert problems == ["file not found; create it with `shopbell init` or fix the path"]
    assert problems_of(None, {"SHOPBELL_CONFIG": str(tmp_path / "nope.toml")}) == problems


def test_unreadable_files(tmp_path: Path) -> None:
    assert problems_of(tmp_path) == ["is a folder, not a file"]
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert problems_of(binary)[0].startswith("not UTF-8 text")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission(write_config: Callable[..., Path]) -> None:
    path = write_config("")
    path.chmod(0)
    assert "permission denied" in problems_of(path)[0]


def test_unknown_and_malformed_environment_variables() -> None:
    problems = problems_of(
        None, {"SHOPBELL_API_TOKN": "x", "SHOPBELL_API_PORT": "eighty", "SHOPBELL_CONFIG": ""}
    )
    assert problems == [
        "environment variable SHOPBELL_API_PORT: expected a whole number, got 'eighty'",
        "environment variable SHOPBELL_API_TOKN: not a shopbell setting "
        "(expected SHOPBELL_<SECTION>_<KEY>, e.g. SHOPBELL_API_TOKEN)",
    ]


def test_secrets_never_echoed_in_errors(write_config: Callable[..., Path]) -> None:
    path = write_config('[api]\ntoken = "short-secret"\n')
    problems = problems_of(path)
    assert problems == [
        "api.token: must be at least 16 characters (or empty to use a generated one)"
    ]
    assert "short-secret" not in "\n".join(problems)
    wrong_type = write_config("[api]\ntoken = 123456789\n", name="t.toml")
    assert "123456789" not in "\n".join(problems_of(wrong_type))


def test_effective_config_masks_secrets() -> None:
    settings = load_config(None, {"SHOPBELL_API_TOKEN": "a-secret-token-from-env"}).settings
    text = effective_toml(settings)
    assert "a-secret-token-from-env" not in text
    assert 'token = "********"' in text
    assert "port = 8765" in text
    assert repr(settings).count("a-secret-token-from-env") == 0


def test_paths_follow_data_dir(write_config: Callable[..., Path], tmp_path: Path) -> None:
    settings = load_config(write_config('[paths]\ndata_dir = "/srv/shop"\ndatabase = "x.db"\n'), {})
    assert settings.settings.database_path == Path("/srv/shop/x.db")
    assert settings.settings.token_path == Path("/srv/shop/api_token")
    default = load_config(None, {}).settings
    assert default.database_path == Path(os.environ["XDG_DATA_HOME"]) / "shopbell" / "shopbell.db"
