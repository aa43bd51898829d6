"""`shopbell db`: migrate, back up, restore and check the database file."""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click

from daemon.admin.cli.base import CONTEXT, fail, load
from daemon.config import ReplicaSettings
from daemon.runtime.lock import AlreadyRunningError, InstanceLock, LockError
from daemon.runtime.paths import PathError, ensure_private_dir
from daemon.runtime.replica import CONFIG_NAME as REPLICA_CONFIG_NAME
from daemon.runtime.replica import ReplicaError, meta_dir, restore_replica, stop_orphan
from storage.admin import backup_file, check_file, migrate_file
from storage.errors import StorageError
from storage.restore import RestoreResult, restore_file


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
@click.argument("source", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--from-replica",
    is_flag=True,
    help="Restore the newest state [replica] url holds, with Litestream (a new SD card).",
)
@click.pass_context
def db_restore(ctx: click.Context, source: Path | None, from_replica: bool) -> None:
    """Replace the database with the backup SOURCE, or with the replica, after checking it
    (daemon stopped).

    SOURCE must be a sound SQLite file of this or an older shopbell. With --from-replica,
    Litestream rebuilds the newest database [replica] url holds into a temporary file first,
    which gets the same checks. The current database is kept beside it as
    <name>.before-restore-<time>; a bad SOURCE or replica changes nothing.
    """
    settings = load(ctx).settings
    path = settings.database_path
    if from_replica == (source is not None):
        fail(
            "give either a backup file SOURCE or --from-replica (not both, not neither); "
            "nothing was changed"
        )
    try:
        ensure_private_dir(path.parent, purpose="database folder")
        # Held throughout, so a daemon cannot start on the file while it is being swapped.
        with InstanceLock(path):
            if source is not None:
                result = restore_file(source, path, now=datetime.now(UTC))
            else:
                result = _restore_from_replica(settings.replica, path, settings.data_dir)
            # Litestream's notes of the file replaced: stale for the new one (docs/replica.md).
            shutil.rmtree(meta_dir(path), ignore_errors=True)
    except AlreadyRunningError as exc:
        fail(f"{exc}. A restore needs the daemon stopped; nothing was changed.")
    except (LockError, PathError, StorageError, ReplicaError) as exc:
        fail(str(exc))
    click.echo(f"checked {'the replica' if from_replica else result.source}: integrity ok")
    if result.kept is not None:
        click.echo(f"kept the previous database as {result.kept}")
    shown = settings.replica.url if from_replica else result.source
    click.echo(f"restored {result.database} from {shown} ({result.size_bytes} bytes)")
    if result.pending:
        click.echo(f"{len(result.pending)} migrations will be applied at the next start")


def _restore_from_replica(replica: ReplicaSettings, path: Path, data_dir: Path) -> RestoreResult:
    """Litestream's copy of the replica, in a private folder beside the database, put in place
    by restore_file (its checks, the kept database) and then removed."""
    stop_orphan(data_dir, data_dir / REPLICA_CONFIG_NAME)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.replica-", dir=path.parent))
    try:
        click.echo(f"fetching the newest database from {replica.url} with litestream...")
        copy = restore_replica(replica, path, folder)
        return restore_file(copy.path, path, now=datetime.now(UTC))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
