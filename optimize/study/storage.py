"""Where a study lives: Optuna RDB storages (SQLite by default, PostgreSQL for many machines),
opened with one-line errors, and the recovery of trials whose worker died.

A SQLite file gets WAL mode and a lock timeout so several local workers can write to it; any
SQLAlchemy URL such as ``postgresql+psycopg2://user@host/db`` serves workers on many machines.
Heartbeats mark a dead worker's trial FAILED after ``grace_period`` seconds and enqueue a retry
with its parameters (:func:`recover_stale_trials`, run by every worker when it starts).
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from base.errors import StorageError, StudyError
from optimize.config import StudyConfig

logger = logging.getLogger(__name__)


DEFAULT_STORAGE = "sqlite:///studies.db"


FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


SQLITE_LOCK_TIMEOUT_S = 60


_CREATE_RETRIES = 5


STORAGE_FORMS = "sqlite:///path.db or postgresql+psycopg2://user@host/db"


def _open_rdb(url: str, **kwargs: Any) -> RDBStorage:
    """``RDBStorage(url, **kwargs)``, or a :class:`StorageError` of one line instead of SQLAlchemy's
    traceback.

    Workers that open a new storage at the same moment race to create its tables: the losers'
    errors (:func:`_lost_creation_race`) are retried, a few times.
    """
    import sqlalchemy.exc

    for attempt in range(_CREATE_RETRIES):
        try:
            return RDBStorage(url, **kwargs)
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as exc:
            if _lost_creation_race(exc) and attempt < _CREATE_RETRIES - 1:
                time.sleep(0.2 * (attempt + 1))
                continue
            if isinstance(exc, sqlalchemy.exc.NoSuchModuleError):
                reason = f"unknown database dialect {url.split(':', 1)[0]!r}"
            elif isinstance(exc, sqlalchemy.exc.ArgumentError):
                reason = "not a URL SQLAlchemy can parse"
            elif isinstance(exc, ImportError):
                reason = "no database driver installed for it"
            else:
                orig = getattr(exc, "orig", None) or exc
                lines = [line.strip() for line in str(orig).strip().splitlines() if line.strip()]
                reason = lines[0] if lines else type(orig).__name__
            raise StorageError(
                f"cannot open the study storage {redact(url)}: {reason}; expected {STORAGE_FORMS} "
                "(a reachable server and an existing database)."
            ) from None
    raise AssertionError("unreachable")


def _lost_creation_race(exc: BaseException) -> bool:
    """Whether ``exc`` is what a process gets that creates a storage's tables while another does:
    the winner's rows are there (``IntegrityError``, PostgreSQL), or its tables are (SQLite:
    ``OperationalError: table ... already exists``)."""
    import sqlalchemy.exc

    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return True
    return isinstance(exc, sqlalchemy.exc.OperationalError) and "already exists" in str(exc)


def make_storage(url: str, study: StudyConfig) -> RDBStorage:
    """An RDB storage with heartbeats and retry of stale trials.

    SQLite gets a lock timeout (several local workers share the file; never put it on NFS);
    server databases get ``pool_pre_ping`` so dropped connections are replaced.

    Raises:
        StorageError: the URL is malformed, its driver is missing or its database unreachable.
    """
    if url.startswith("sqlite"):
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    with (
        warnings.catch_warnings()
    ):  # heartbeats are "experimental" in Optuna; we rely on them knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = _open_rdb(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=study.heartbeat_interval,
            grace_period=study.grace_period,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                max_retry=study.max_retry
            ),
        )
    if url.startswith("sqlite"):
        _sqlite_wal(storage.engine)
    return storage


def _sqlite_wal(engine) -> None:
    """Write-ahead logging for a local SQLite study file.

    WAL lets readers (the progress bar, optuna-dashboard) work while a worker writes, and with
    ``synchronous=NORMAL`` a commit no longer waits for an fsync — a trial writes a dozen times.
    A killed worker loses nothing (its commits are in the WAL file); only a power loss or OS
    crash can roll back the last commits, and it never corrupts the file. Local disks only (as
    for SQLite in general): WAL needs shared memory between the processes. The ``-wal`` and
    ``-shm`` files beside the study file belong to it while workers run.
    """
    import sqlalchemy

    @sqlalchemy.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    engine.dispose()  # connections opened while Optuna created the tables get the pragmas too


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None: another database, or an in-memory one)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        return Path(url[len(prefix) :].split("?", 1)[0])
    return None


def missing_sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL when it does not exist (opening it would create it)."""
    path = sqlite_file(url)
    return path if path is not None and not path.is_file() else None


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class StorageWatch:
    """A SQLite study file, watched for deletion or replacement while a study runs.

    Processes that have the file open keep writing to it after it is deleted (or renamed over),
    so nothing they store can be read back, and a new connection would create an empty file in
    its place: the study would end "successfully" with its trials gone. :meth:`check` notices.
    A server storage (PostgreSQL) is not watched.

    Args:
        url: the storage URL; its file must exist.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = sqlite_file(url)
        self._identity = None if self.path is None else _file_identity(self.path)

    def check(self) -> None:
        """Raise when the study file is no longer the one the study was opened on.

        Raises:
            StorageError: the file was deleted or replaced (names it).
        """
        if self.path is None or self._identity is None:
            return
        now = _file_identity(self.path)
        if now != self._identity:
            what = "was deleted" if now is None else "was replaced by another file"
            raise StorageError(
                f"the study storage file {self.path} {what} while the study ran: what the study "
                "stored since then is lost; restore the file (or start again with another "
                "--storage) and rerun the command."
            )


def load_existing_study(url: str, name: str) -> optuna.Study:
    """Load a study that must exist: never creates a database file or a study.

    A SQLite file gets the workers' lock timeout (workers may be writing to it).

    Raises:
        StorageError: a SQLite URL whose file does not exist (the URL is named without its
            password), or see :func:`make_storage`.
        StudyError: no study ``name`` in the storage (the message lists the names there).
    """
    if (missing := missing_sqlite_file(url)) is not None:
        raise StorageError(
            f"no study storage at {missing}: the SQLite file of {redact(url)} does not exist; "
            "pass --storage."
        )
    engine_kwargs = (
        {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}} if url.startswith("sqlite") else {}
    )
    storage = _open_rdb(url, engine_kwargs=engine_kwargs)
    names = optuna.get_all_study_names(storage=storage)
    if name not in names:
        raise StudyError(
            f"no study named {name!r} in storage {redact(url)}; it has {sorted(names)}."
        )
    return optuna.load_study(study_name=name, storage=storage)


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def recover_stale_trials(study: optuna.Study) -> list[int]:
    """Fail the trials of dead workers and queue their retries; return their numbers.

    Optuna's :func:`~optuna.storages.fail_stale_trials` fails every RUNNING trial whose heartbeat
    is older than the storage's ``grace_period`` and calls its retry callback (which enqueues the
    trial again with its parameters). A trial whose worker died before its first heartbeat has
    none; it is failed and retried the same way once it started more than ``grace_period`` ago.
    """
    storage = getattr(
        study._storage, "_backend", study._storage
    )  # Optuna wraps an RDBStorage in a cache
    if not isinstance(storage, RDBStorage) or storage.heartbeat_interval is None:
        return []
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    _fail_silent_trials(study, storage)
    return sorted(
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.number in running
    )


def _fail_silent_trials(study: optuna.Study, storage: RDBStorage) -> None:
    """Fail and retry RUNNING trials without any heartbeat that started more than ``grace_period``
    ago."""
    from optuna.storages._rdb import models
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    grace = storage.grace_period or 2 * storage.heartbeat_interval
    cutoff = datetime.now() - timedelta(seconds=grace)
    old = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.datetime_start is not None and t.datetime_start < cutoff
    ]
    if not old:
        return
    with Session(storage.engine) as session:
        beating = set(
            session.scalars(
                select(models.TrialHeartbeatModel.trial_id).where(
                    models.TrialHeartbeatModel.trial_id.in_([t._trial_id for t in old])
                )
            )
        )
    callback = storage.get_heartbeat_stale_trial_callback()
    for trial in old:
        if trial._trial_id in beating:
            continue
        try:
            if not storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        if callback is not None:
            callback(study, copy.deepcopy(storage.get_trial(trial._trial_id)))


def retry_trial(study: optuna.Study, trial: FrozenTrial, max_retry: int) -> bool:
    """Queue ``trial`` (failed) again with its parameters, as Optuna's heartbeat retry does.

    Returns:
        False when it was retried ``max_retry`` times already.
    """
    before = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, trial)
    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,))) > before


def redact(url: str) -> str:
    """Hide a password in a storage URL (for logs and messages)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url
