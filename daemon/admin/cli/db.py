"""`shopbell db`: migrate, back up, restore and check the database file."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from daemon.admin.cli.base import CONTEXT, fail, load
from daemon.runtime.lock import AlreadyRunningError, InstanceLock, LockError
from daemon.runtime.paths import PathError, ensure_private_dir
from storage.admin import backup_file, check_file, migrate_file
from storage.errors import StorageError
from storage.restore import restore_file


@click.group(context_settings=CONTEXT)
def db() -> None:
    """Work on the database file (safe whether or not the daemon runs)."""


@db.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Apply any pending schema migrations."""
    path = load(ctx).settings.database_path
    try:
        ensure_private_dir(path.parent, purpose="database folder")
        applied = migrate_file(path)
    except (StorageError, PathError) as exc:
        fail(str(exc))
    if applied:
        click.echo(f"{path}: applied {len(applied)} migrations: {', '.join(applied)}")
    else:
        click.echo(f"{path}: schema up to date")


@db.command("backup")
@click.argument("dest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace DEST if it exists.")
@click.pass_context
def db_backup(ctx: click.Context, dest: Path, overwrite: bool) -> None:
    """Copy the database to DEST with SQLite's online backup (safe while the daemon runs)."""
    path = load(ctx).settings.database_path
    try:
        result = backup_file(path, dest, overwrite=overwrite)
    except StorageError as exc:
        fail(str(exc))
    click.echo(f"backed up {path} to {result.path} ({result.size_bytes} bytes)")


@db.command("restore")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def db_restore(ctx: click.Context, source: Path) -> None:
    """Replace the database with the backup SOURCE, after checking it (daemon stopped).

    SOURCE must be a sound SQLite file of this or an older shopbell. The current database
    is kept beside it as <name>.before-restore-<time>; a bad SOURCE changes nothing.
    """
    path = load(ctx).settings.database_path
    try:
        ensure_private_dir(path.parent, purpose="database folder")
        # Held throughout, so a daemon cannot start on the file while it is being swapped.
        with InstanceLock(path):
            result = restore_file(source, path, now=datetime.now(UTC))
    except AlreadyRunningError as exc:
        fail(f"{exc}. A restore needs the daemon stopped; nothing was changed.")
    except (LockError, PathError, StorageError) as exc:
        fail(str(exc))
    click.echo(f"checked {result.source}: integrity ok")
    if result.kept is not None:
        click.echo(f"kept the previous database as {result.kept}")
    click.echo(f"restored {result.database} from {result.source} ({result.size_bytes} bytes)")
    if result.pending:
        click.echo(f"{len(result.pending)} migrations will be applied at the next start")


@db.command("check")
@click.pass_context
def db_check(ctx: click.Context) -> None:
    """Check the database's integrity and its migrations; exit 1 if anything is wrong."""
    path = load(ctx).settings.database_path
    try:
        result = check_file(path)
    except StorageError as exc:
        fail(str(exc))
    status = result.migrations
    integrity_ok = result.integrity == ("ok",)
    click.echo(f"database: {path}")
    click.echo(f"integrity: {'ok' if integrity_ok else 'PROBLEMS'}")
    for line in () if integrity_ok else result.integrity:
        click.echo(f"  {line}")
    if result.foreign_key_violations:
        click.echo(f"foreign keys: {len(result.foreign_key_violations)} rows point nowhere")
        for line in result.foreign_key_violations:
            click.echo(f"  {line}")
    click.echo(f"migrations: {len(status.applied)} applied, {len(status.pending)} pending")
    for name in status.pending:
        click.echo(f"  pending: {name} (run `shopbell db migrate`)")
    for name in status.unknown:
        click.echo(f"  unknown: {name} (written by a newer shopbell)")
    if not result.ok or status.unknown:
        sys.exit(1)
