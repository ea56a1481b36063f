"""Where a Dask cluster is and what its workers reach: ``--cluster`` parsed, hosts of this
machine, the SQLite checks, and the probe every connected worker answers before a study starts.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from base.errors import InputError
from optimize._version import __version__

LOCAL = "local"
"""``--cluster local``: a LocalCluster on this machine."""
PROBE_TIMEOUT_S = 10
"""Seconds a worker's storage probe may take to connect (PostgreSQL ``connect_timeout``)."""


class ClusterError(InputError):
    """The cluster cannot run this study (address, reachability, storage, workers); the message
    names the address or worker and what was expected."""


@dataclass(frozen=True)
class ClusterAddress:
    """A parsed ``--cluster`` value.

    Attributes:
        given: the value as given.
        scheduler: the scheduler's address (``tcp://host:port``); None for ``local``.
    """

    given: str
    scheduler: str | None

    @property
    def local(self) -> bool:
        """A LocalCluster started by ``run`` itself."""
        return self.scheduler is None

    @property
    def host(self) -> str | None:
        """The scheduler's host name or IP; None for ``local`` or an address without a host."""
        if self.scheduler is None:
            return None
        from distributed.comm import parse_address, parse_host_port

        try:
            return parse_host_port(parse_address(self.scheduler)[1])[0] or None
        except (ValueError, TypeError):
            return None

    @classmethod
    def parse(cls, text: str) -> ClusterAddress:
        """``local``, a ``protocol://host:port`` address, or the path of a scheduler file.

        Raises:
            ClusterError: an empty value, a missing or unreadable scheduler file, or one without
                an ``address``.
        """
        text = text.strip()
        if not text:
            raise ClusterError(f"--cluster is empty; expected {_FORMS}.")
        if text == LOCAL:
            return cls(text, None)
        if "://" in text:
            return cls(text, text)
        path = Path(text)
        if not path.is_file():
            raise ClusterError(
                f"--cluster {text!r} is neither 'local', a scheduler address nor an existing "
                f"scheduler file; expected {_FORMS}."
            )
        try:
            address = json.loads(path.read_text()).get("address")
        except (OSError, ValueError, AttributeError) as exc:
            raise ClusterError(
                f"--cluster {text!r}: cannot read the scheduler file ({exc}); expected the JSON "
                "that `dask scheduler --scheduler-file FILE` writes."
            ) from None
        if not isinstance(address, str) or "://" not in address:
            raise ClusterError(
                f"--cluster {text!r}: the scheduler file has no 'address' (got {address!r}); "
                "expected the JSON that `dask scheduler --scheduler-file FILE` writes."
            )
        return cls(text, address)


_FORMS = "'local', a scheduler address such as tcp://host:8786, or a scheduler file"


def local_addresses() -> set[str]:
    """Host names and IP addresses of this machine (loopback included)."""
    names = {"localhost", socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError):
        names |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    with contextlib.suppress(ImportError, OSError):
        import psutil

        for addrs in psutil.net_if_addrs().values():
            names |= {a.address.split("%", 1)[0] for a in addrs if a.family in _INET}
    return names


_INET = (socket.AF_INET, socket.AF_INET6)


def is_local_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP) is this machine."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified:
            return True
    return host in local_addresses()


def is_sqlite(storage: str) -> bool:
    return storage.startswith("sqlite")


def check_sqlite_scheduler(address: ClusterAddress, storage: str) -> None:
    """Refuse a SQLite storage with a scheduler on another machine, before connecting.

    Raises:
        ClusterError: naming both, the reason, and the storage to use instead.
    """
    host = address.host
    if not is_sqlite(storage) or address.local or host is None or is_local_host(host):
        return
    raise ClusterError(
        f"--storage {storage} is a SQLite file on this machine, but the Dask scheduler "
        f"{address.scheduler} is on another host ({host}): its workers cannot share the file "
        "(SQLite is for one machine, never on a network file system); use a PostgreSQL storage "
        "that every worker reaches, e.g. postgresql+psycopg2://user@db-host/optuna."
    )


def machine_id() -> str:
    """What tells two processes they run on the same machine: the kernel's boot id where there
    is one (containers of one machine share it), else the host name."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return socket.gethostname()


def shared_storage_url(storage: str) -> str:
    """``storage`` as every worker must open it: a relative SQLite path made absolute (a Dask
    worker's current directory is its own)."""
    prefix = "sqlite:///"
    if storage.startswith(prefix) and ":memory:" not in storage:
        path, _, query = storage[len(prefix) :].partition("?")
        if path and not Path(path).is_absolute():
            return prefix + str(Path(path).resolve()) + (f"?{query}" if query else "")
    return storage


@dataclass(frozen=True)
class WorkerReport:
    """What a Dask worker process says about itself before the study starts (its probe).

    Attributes:
        address: the Dask worker's address.
        host: its host name.
        pid: its process id.
        machine: :func:`machine_id` of its machine.
        nthreads: its task threads.
        version: the lstm-optuna version it imports.
        storage_error: why it cannot open the study's storage; None when it can.
        import_error: why it cannot import the worker loop; None when it can.
    """

    address: str
    host: str
    pid: int
    machine: str
    nthreads: int
    version: str
    storage_error: str | None
    import_error: str | None = None


def probe(storage: str, dask_worker: Any = None) -> dict[str, Any]:
    """Run on each worker (``Client.run``): import the worker loop (so the loops start together
    later), open the storage once and describe this process."""
    import importlib

    error = import_error = None
    try:
        importlib.import_module("optimize.study.runner")
    except Exception as exc:  # a broken environment on that worker is the answer
        import_error = f"{type(exc).__name__}: {exc}"
    try:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        connect_args = {"connect_timeout": PROBE_TIMEOUT_S} if "postgresql" in storage else {}
        engine = sqlalchemy.create_engine(storage, poolclass=NullPool, connect_args=connect_args)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except Exception as exc:  # any reason the storage cannot be opened here is the answer
        lines = [x.strip() for x in str(getattr(exc, "orig", None) or exc).splitlines()]
        error = next((x for x in lines if x), type(exc).__name__)
    return {
        "address": getattr(dask_worker, "address", "?"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "machine": machine_id(),
        "nthreads": int(getattr(getattr(dask_worker, "state", None), "nthreads", 1)),
        "version": __version__,
        "storage_error": error,
        "import_error": import_error,
    }


def worker_problems(
    reports: list[WorkerReport], storage: str, *, machine: str, version: str = __version__
) -> list[str]:
    """Why these workers cannot run the study (empty: they can).

    Args:
        reports: one per connected Dask worker process.
        storage: the storage URL (password hidden in messages).
        machine: :func:`machine_id` of the process that runs ``run`` (SQLite must be there).
        version: the lstm-optuna version of ``run``.
    """
    from optimize.study.storage import redact

    problems = []
    for r in reports:
        where = f"Dask worker {r.address} (host {r.host}, pid {r.pid})"
        if r.import_error is not None:
            problems.append(f"{where} cannot import lstm-optuna's worker loop: {r.import_error}")
        if r.storage_error is not None:
            problems.append(f"{where} cannot open the storage {redact(storage)}: {r.storage_error}")
        elif is_sqlite(storage) and r.machine != machine:
            problems.append(
                f"{where} is on another machine than this SQLite file; use a PostgreSQL storage "
                "that every worker reaches"
            )
        if r.nthreads != 1:
            problems.append(
                f"{where} has {r.nthreads} threads; a worker loop needs a process of its own: "
                "start workers with `dask worker ... --nthreads 1`"
            )
        if r.version != version:
            problems.append(f"{where} runs lstm-optuna {r.version}, this is {version}")
    return problems
