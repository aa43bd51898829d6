"""Private folders and secret files: created with the right modes, never silently replaced."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from daemon.runtime.paths import PathError, ensure_api_token, ensure_private_dir, write_private_file


def test_private_dir_and_files_modes(tmp_path: Path) -> None:
    folder = ensure_private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    target = folder / "secret"
    write_private_file(target, "x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(PathError, match="already exists"):
        write_private_file(target, "y")
    assert target.read_text() == "x"
    assert [p.name for p in folder.iterdir()] == ["secret"], "no temp files left behind"


def test_dir_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(PathError) as caught:
        ensure_private_dir(tmp_path / "file" / "data")
    assert str(tmp_path / "file" / "data") in str(caught.value)


def test_api_token_generated_once(tmp_path: Path) -> None:
    path = tmp_path / "data" / "api_token"
    token = ensure_api_token(path)
    assert len(token) >= 32
    assert ensure_api_token(path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
