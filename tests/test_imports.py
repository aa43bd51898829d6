"""The import rules of DESIGN.md hold: checked by import-linter and by what really gets imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


def _modules_after_import(*modules: str) -> set[str]:
    code = f"import sys\nimport {', '.join(modules)}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(result.stdout.split())


def test_the_daemon_never_loads_textual() -> None:
    loaded = _modules_after_import("daemon.app.lifecycle", "daemon.admin.cli", "providers")
    assert "daemon.app.lifecycle" in loaded
    assert not {name for name in loaded if name.split(".")[0] in {"textual", "tui"}}


def test_storage_loads_no_http_or_ui() -> None:
    loaded = _modules_after_import("storage.database", "storage.admin", "storage.models")
    assert "storage.database" in loaded
    forbidden = {"textual", "httpx", "daemon", "providers", "tui", "fastapi"}
    assert not {name for name in loaded if name.split(".")[0] in forbidden}


def test_storage_models_need_only_the_standard_library() -> None:
    # The TUI imports these record types; they must not drag in sqlite-utils or the daemon.
    loaded = _modules_after_import("storage.models")
    assert "sqlite_utils" not in loaded
    assert "pydantic" not in loaded
