"""``run --cluster``: the workers as tasks on a real Dask cluster.

A real ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 (free ports), the PostgreSQL
server at 127.0.0.1 (a database of the test's own, dropped after), a LocalCluster; real training
on the embedded candles. Nothing is mocked: a worker is killed with SIGKILL, Ctrl-C is a SIGINT to
the process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import psutil
import pytest
import yaml
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from optimize.search.space import load_space
from optimize.study.cluster.address import (
    ClusterAddress,
    ClusterError,
    WorkerReport,
    check_sqlite_scheduler,
    is_local_host,
    machine_id,
    shared_storage_url,
    worker_problems,
)
from optimize.study.cluster.task import REFIRE_S
from optimize.study.records import TrialRecord
from optimize.study.runner import open_study
from optimize.study.seednoise import read_values
from tests.optimize.study.helpers import (
    PG_ENV,
    PG_URL,
    REPO,
    SMOKE_SPACE,
    cli,
    load,
    pg_unreachable,
    run_args,
    run_python,
    slow_space,
    write_config,
)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
START_TIMEOUT_S = 90
"""Bound on starting a scheduler and its workers on a loaded machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip()]


# --- a real Dask cluster on 127.0.0.1 -----------------------------------------------------------


@dataclass
class DaskCluster:
    """A ``dask scheduler`` and its ``dask worker`` processes (each with a nanny)."""

    address: str
    scheduler: subprocess.Popen
    workers: list[subprocess.Popen]

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30, set_as_default=False)

    def worker_pids(self) -> set[int]:
        """The processes that run tasks (the nannies' children)."""
        with self.client() as client:
            return set(client.run(os.getpid).values())


def _dask(*args: str, log: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextlib.contextmanager
def dask_cluster(tmp_path: Path, n_workers: int = 2) -> Iterator[DaskCluster]:
    """Start a scheduler and ``n_workers`` single-thread workers; stop them all on exit."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask(
        "scheduler",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-dashboard",
        log=tmp_path / "scheduler.log",
    )
    workers = []
    cluster = DaskCluster(address, scheduler, workers)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.2)
        for k in range(n_workers):
            workers.append(
                _dask(
                    "worker",
                    address,
                    "--nthreads",
                    "1",
                    "--nworkers",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--no-dashboard",
                    "--local-directory",
                    str(tmp_path / f"dask-worker-{k}"),
                    log=tmp_path / f"worker-{k}.log",
                )
            )
        with cluster.client() as client:
            client.wait_for_workers(n_workers, timeout=max(1, deadline - time.monotonic()))
        yield cluster
    finally:
        for proc in [*workers, scheduler]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*workers, scheduler]:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test's own (unique name), dropped after the test."""
    reason = pg_unreachable()
    if reason:
        if os.environ.get("CI") or PG_ENV in os.environ:
            pytest.fail(f"{reason} (CI or {PG_ENV} is set: the server must be there)")
        pytest.skip(reason)
    from sqlalchemy.engine import make_url

    name = f"lstm_optuna_cluster_{uuid.uuid4().hex[:10]}"
    admin = make_url(PG_URL)
    import psycopg2

    def execute(sql: str) -> None:
        conn = psycopg2.connect(
            host=admin.host,
            port=admin.port or 5432,
            user=admin.username,
            password=admin.password,
            dbname=admin.database,
        )
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _robustness_data_loaded(cluster: DaskCluster) -> dict[str, bool]:
    """Per Dask worker: whether the robustness step's evaluations loaded their data there."""

    def loaded() -> bool:
        from optimize.study import robustness

        return "data" in robustness._WORKER_DATA

    with cluster.client() as client:
        return client.run(loaded)


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_run_on_a_dask_cluster_uses_every_worker_and_runs_robustness_there(tmp_path, pg_database):
    """`run --cluster tcp://...`: the trials are run by both Dask worker processes (recorded host
    and pid), the study reaches its target with nothing left RUNNING, and the robustness step's
    evaluations ran on the cluster's workers; their processes no longer unmap every freed large
    array (:func:`~optimize.study.cluster.task.lift_malloc_trim`)."""
    config = write_config(tmp_path, study={"robustness_top": 2, "robustness_seed_sets": 2})
    name = f"cl-{uuid.uuid4().hex[:8]}"
    with dask_cluster(tmp_path) as cluster:
        pids = cluster.worker_pids()
        assert len(pids) == 2
        proc = cli(
            *run_args(
                config,
                pg_database,
                name,
                "--n-trials",
                "6",
                "--workers",
                "2",
                "--cluster",
                cluster.address,
            )
        )
        out = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, out
        assert f"Dask scheduler {cluster.address}: 2 worker process(es)" in out
        loaded = _robustness_data_loaded(cluster)
        with cluster.client() as client:  # `dask worker`'s nannies set MALLOC_TRIM_THRESHOLD_
            client.run(_page_faults_per_allocation, 20)
            faults = client.run(_page_faults_per_allocation)
    assert all(f < 10 for f in faults.values()), f"run lifted the malloc trim: {faults}"
    study = optuna.load_study(study_name=name, storage=pg_database)
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) >= 6
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    ran_by = {(TrialRecord.host_of(t), TrialRecord.worker_of(t)) for t in finished}
    assert {pid for _, pid in ran_by} == pids, "every trial ran in a Dask worker, both of them"
    assert {host for host, _ in ran_by} == {socket.gethostname()}
    assert len({t.number for t in trials}) == len(trials)
    raced = {v.trial for v in read_values(study)}
    assert len(raced) == 2 and raced <= {
        t.number for t in finished if t.state == TrialState.COMPLETE
    }
    for trial in raced:  # two rounds are certain before the race's first test
        assert sorted(v.seed_set for v in read_values(study) if v.trial == trial) == [1, 2]
    assert any(loaded.values()), f"no Dask worker evaluated the robustness step: {loaded}"
    assert "robustness: race of the best 2 complete trials" in out


@pytest.mark.slow  # 1.5 to 2 minutes on 2 loaded cores
@pytest.mark.postgres
def test_sigkilled_dask_worker_trial_is_failed_retried_and_its_task_rerun(tmp_path, pg_database):
    """SIGKILL of the Dask worker process that runs a trial: the trial is failed by the heartbeat
    and retried with its parameters, Dask reruns the lost task (its loop joins the study again,
    in another process), and the study finishes with nothing RUNNING."""
    config = write_config(tmp_path)
    space = slower_space(tmp_path)
    name = f"kill-{uuid.uuid4().hex[:8]}"
    log = REPO / "logs" / f"{name}.log"
    with dask_cluster(tmp_path) as cluster:
        proc = cli(
            *run_args(
                config,
                pg_database,
                name,
                "--n-trials",
                "3",
                "--workers",
                "2",
                "--cluster",
                cluster.address,
                space=space,
            )
        )
        try:
            victim = _running_trial(pg_database, name)
            pid = TrialRecord.worker_of(victim)
            assert pid in cluster.worker_pids()
            os.kill(pid, signal.SIGKILL)
            out = proc.communicate(timeout=900)[0]
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, out
    study = optuna.load_study(study_name=name, storage=pg_database)
    trials = study.get_trials(deepcopy=False)
    killed = trials[victim.number]
    assert killed.state == TrialState.FAIL
    (retry,) = [
        t
        for t in trials
        if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed.number
    ]
    assert retry.params == killed.params and retry.state in FINISHED
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len([t for t in trials if t.state in FINISHED]) >= 3
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))
    # the lost task ran again: its loop joined the study a second time, from another process
    starts = [line for line in log.read_text().splitlines() if "starts on Dask worker" in line]
    log.unlink()
    index = next(
        line.split(" worker", 1)[1].split()[0] for line in starts if f"pid{pid} " in line
    )  # the killed loop's worker index
    again = [line for line in starts if f" worker{index} " in line and f"pid{pid} " not in line]
    assert again, "\n".join(starts)


@pytest.mark.slow  # 25 to 40 s on 2 loaded cores
def test_sigkill_of_run_stops_the_loops_on_the_cluster(tmp_path):
    """`run` killed (SIGKILL): the scheduler cancels its tasks when its client goes away, and the
    loops stop as on SIGTERM: their trials are FAILED and queued at once, not left RUNNING."""
    storage = f"sqlite:///{tmp_path / 'orphan.db'}"
    with dask_cluster(tmp_path) as cluster:
        extra = ("--n-trials", "3", "--workers", "2", "--cluster", cluster.address)
        config, space = write_config(tmp_path), slower_space(tmp_path)
        proc = cli(*run_args(config, storage, "orphan", *extra, space=space))
        try:
            _running_trial(storage, "orphan")
        finally:
            proc.kill()
            proc.communicate(timeout=60)
        # An interrupt raised in a loop's thread can be swallowed on the way (then the watcher
        # raises it again after REFIRE_S, and that loop may finish its trial and start another
        # first): wait for every loop to have stopped with its trial FAILED and queued. A trial
        # left running would take far longer (hundreds of epochs).
        deadline = time.monotonic() + REFIRE_S + 20
        while time.monotonic() < deadline:
            trials = optuna.load_study(study_name="orphan", storage=storage).get_trials()
            if not _running_or_unqueued(trials):
                break
            time.sleep(0.5)
        assert not [t for t in trials if t.state == TrialState.RUNNING]
        failed = [t for t in trials if t.state == TrialState.FAIL]
        assert failed
        for trial in failed:  # each FAILED trial queued once with its parameters
            (retry,) = [
                t
                for t in trials
                if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == trial.number
            ]
            assert retry.params == trial.params
            # a retry a loop started before its stop landed is FAILED and queued in turn
            assert retry.state in (TrialState.WAITING, TrialState.FAIL, TrialState.COMPLETE)


def _running_or_unqueued(trials: list[optuna.trial.FrozenTrial]) -> bool:
    """A trial still RUNNING, or a FAILED one whose retry is not queued yet."""
    retried = {RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in trials}
    return any(
        t.state == TrialState.RUNNING or (t.state == TrialState.FAIL and t.number not in retried)
        for t in trials
    )


def slower_space(tmp_path: Path) -> Path:
    """Trials of about ten seconds or more: a signal or a kill surely lands mid-trial."""
    path = slow_space(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["lstm"].update({"epochs": 400, "early_stopping_patience": 400})
    path.write_text(yaml.safe_dump(raw))
    return path


def _running_trial(storage: str, name: str, timeout: float = 300) -> optuna.trial.FrozenTrial:
    """A trial that is training: RUNNING with all its parameters, for a second already (so it has
    a heartbeat)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(KeyError):
            study = optuna.load_study(study_name=name, storage=storage)
            running = [
                t
                for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if "resolved_params" in t.user_attrs
            ]
            if running:
                time.sleep(1.0)
                return running[0]
        time.sleep(0.2)
    raise AssertionError("no trial started in time")


@pytest.mark.parametrize("form", ["address", "scheduler file"])
def test_unreachable_scheduler_is_one_line_before_any_study(tmp_path, form):
    address = f"tcp://127.0.0.1:{free_port()}"
    given = address
    if form == "scheduler file":
        given = str(tmp_path / "scheduler.json")
        Path(given).write_text(json.dumps({"type": "Scheduler", "address": address}))
    db = tmp_path / "none.db"
    proc = cli(*run_args(write_config(tmp_path), f"sqlite:///{db}", "none", "--cluster", given))
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2, out
    (line,) = lines(out)
    assert line.startswith(f"error: cannot reach the Dask scheduler at {address}"), line
    assert not db.exists(), "no storage, no study before the cluster answers"


def test_sqlite_with_a_scheduler_on_another_machine_is_refused_with_the_reason(tmp_path):
    """192.0.2.1 (TEST-NET-1) is never this machine; the refusal comes without connecting."""
    db = tmp_path / "local.db"
    started = time.monotonic()
    proc = cli(
        *run_args(
            write_config(tmp_path), f"sqlite:///{db}", "x", "--cluster", "tcp://192.0.2.1:8786"
        )
    )
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2, out
    (line,) = lines(out)
    assert "is a SQLite file on this machine" in line and "tcp://192.0.2.1:8786" in line, line
    assert "cannot share the file" in line and "postgresql" in line.lower(), line
    assert not db.exists()
    assert time.monotonic() - started < 60


def test_a_bad_cluster_value_is_named(tmp_path):
    proc = cli(*run_args(write_config(tmp_path), "sqlite:///x.db", "x", "--cluster", "nowhere"))
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2, out
    (line,) = lines(out)
    assert "--cluster 'nowhere' is neither 'local', a scheduler address nor" in line


def test_cluster_address_forms(tmp_path):
    assert ClusterAddress.parse("local").local
    remote = ClusterAddress.parse("tcp://10.1.2.3:8786")
    assert remote.scheduler == "tcp://10.1.2.3:8786" and remote.host == "10.1.2.3"
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"address": "tcp://node-1:8786"}))
    assert ClusterAddress.parse(str(path)).scheduler == "tcp://node-1:8786"
    path.write_text(json.dumps({"type": "Scheduler"}))
    with pytest.raises(ClusterError, match="has no 'address'"):
        ClusterAddress.parse(str(path))
    with pytest.raises(ClusterError, match="is empty"):
        ClusterAddress.parse(" ")


def test_local_hosts_and_the_sqlite_check():
    assert is_local_host("127.0.0.1") and is_local_host("::1") and is_local_host("localhost")
    assert is_local_host(socket.gethostname())
    assert not is_local_host("192.0.2.1")
    sqlite = "sqlite:///studies.db"
    check_sqlite_scheduler(ClusterAddress.parse("local"), sqlite)
    check_sqlite_scheduler(ClusterAddress.parse("tcp://127.0.0.1:8786"), sqlite)
    check_sqlite_scheduler(ClusterAddress.parse("tcp://192.0.2.1:8786"), PG_URL)
    with pytest.raises(ClusterError, match="cannot share the file"):
        check_sqlite_scheduler(ClusterAddress.parse("tcp://192.0.2.1:8786"), sqlite)
    assert shared_storage_url(sqlite) == f"sqlite:///{Path('studies.db').resolve()}"
    assert shared_storage_url("sqlite:////abs/s.db") == "sqlite:////abs/s.db"
    assert shared_storage_url(PG_URL) == PG_URL


def test_worker_problems_name_each_worker_and_reason():
    here = machine_id()
    ok = WorkerReport("tcp://a:1", "a", 10, here, 1, "v1", None)
    assert worker_problems([ok], "sqlite:////s.db", machine=here, version="v1") == []
    elsewhere = WorkerReport("tcp://b:1", "b", 11, "other-machine", 1, "v1", None)
    (problem,) = worker_problems([ok, elsewhere], "sqlite:////s.db", machine=here, version="v1")
    assert "tcp://b:1 (host b, pid 11) is on another machine than this SQLite file" in problem
    assert worker_problems([elsewhere], PG_URL, machine=here, version="v1") == []
    broken = WorkerReport(
        "tcp://c:1", "c", 12, here, 4, "v2", "connection refused", "ImportError: no torch"
    )
    found = worker_problems(
        [broken], "postgresql+psycopg2://u:secret@db/x", machine=here, version="v1"
    )
    assert len(found) == 4
    assert "tcp://c:1 (host c, pid 12) cannot import" in found[0] and "no torch" in found[0]
    assert "storage postgresql+psycopg2://u:***@db/x: connection refused" in found[1]
    assert "has 4 threads" in found[2] and "--nthreads 1" in found[2]
    assert "runs lstm-optuna v2, this is v1" in found[3]


FIXED = [
    {
        "dropout_percent": 0.1,
        "window_size": 4,
        "learning_rate": 3e-3,
        **{f"w{i}": 0.3 + 0.05 * i for i in range(9)},
        "entry_threshold": 0.8,
        "exit_gap": 0.2,
    },
    {
        "dropout_percent": 0.0,
        "window_size": 3,
        "learning_rate": 5e-3,
        **{f"w{i}": 0.9 - 0.07 * i for i in range(9)},
        "entry_threshold": 0.7,
        "exit_gap": 0.1,
    },
    {
        "dropout_percent": 0.2,
        "window_size": 5,
        "learning_rate": 2e-3,
        **{f"w{i}": 0.1 + 0.08 * i for i in range(9)},
        "entry_threshold": 0.9,
        "exit_gap": 0.3,
    },
]
"""Three parameter sets, queued with ``--n-trials 2``: queued trials run even past the target, and
a loop stops once two are finished and none is queued, so exactly these three run, nothing
sampled."""


def _values(tmp_path: Path, config: Path, name: str, *extra: str) -> tuple[dict, dict]:
    """Trial values and robustness values by parameters, of a `run` of the :data:`FIXED` trials."""
    storage = f"sqlite:///{tmp_path / f'{name}.db'}"
    study = open_study(storage, name, load(config), load_space(SMOKE_SPACE), seed=0)
    for params in FIXED:
        study.enqueue_trial(params)
    proc = cli(*run_args(config, storage, name, "--n-trials", "2", "--workers", "2", *extra))
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert len(trials) == len(FIXED), out
    key = {t.number: json.dumps(t.params, sort_keys=True) for t in trials}
    seeds = {(key[v.trial], v.seed_set): v.value for v in read_values(study)}
    return {key[t.number]: t.value for t in trials}, seeds


@pytest.mark.slow  # 1 to 1.5 minutes on 2 loaded cores
def test_local_cluster_gives_the_same_values_as_worker_processes(tmp_path):
    """The same parameters score the same (CPU) in a LocalCluster's task as in a worker
    subprocess, and so do the robustness step's evaluations on the cluster and in processes."""
    study = {"pruner": "none", "robustness_top": 1, "robustness_seed_sets": 1}
    config = write_config(tmp_path, study=study)  # no pruner: it depends on completion order
    processes, seeds_processes = _values(tmp_path, config, "procs")
    cluster, seeds_cluster = _values(tmp_path, config, "local", "--cluster", "local")
    assert processes == cluster and len(cluster) == len(FIXED)
    assert seeds_processes == seeds_cluster and len(seeds_cluster) == 1


def test_ctrl_c_stops_the_cluster_tasks_and_queues_their_trials(tmp_path):
    """Ctrl-C (SIGINT to the whole process group, LocalCluster processes included) of `run
    --cluster local`: the running trials are FAILED and queued for retry with their parameters,
    nothing stays RUNNING, exit 130 in one message, and no cluster process outlives `run`."""
    config = write_config(tmp_path)
    storage = f"sqlite:///{tmp_path / 'int.db'}"
    name = f"int-{uuid.uuid4().hex[:8]}"
    extra = ("--n-trials", "2", "--workers", "2", "--cluster", "local")
    args = run_args(config, storage, name, *extra, space=slower_space(tmp_path))
    proc = cli(*args, start_new_session=True)
    try:
        trial = _running_trial(storage, name)
        children = psutil.Process(proc.pid).children(recursive=True)
        assert TrialRecord.worker_of(trial) in {c.pid for c in children}
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "rerun the same command to resume" in out
    assert "Traceback" not in out and "WorkerInterrupted" not in out, out
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert trials[trial.number].state == TrialState.FAIL
    for failed in (t for t in trials if t.state == TrialState.FAIL):
        (retry,) = [
            t
            for t in trials
            if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == failed.number
        ]
        assert retry.state == TrialState.WAITING and retry.params == failed.params
    deadline = time.monotonic() + 30
    while any(map(_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [c.pid for c in children if _alive(c)], "cluster processes outlived `run`"


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_dask_gc_diagnosis_is_off_while_a_loop_runs_and_back_after():
    # its gc callback is a place where an interrupt raised in the loop's thread is ignored
    import gc

    from distributed.gc import disable_gc_diagnosis, enable_gc_diagnosis

    from optimize.study.cluster.task import no_gc_diagnosis

    def diagnosing() -> bool:
        return any(
            type(getattr(cb, "__self__", None)).__name__ == "GCDiagnosis" for cb in gc.callbacks
        )

    enable_gc_diagnosis()  # as a Dask worker does when it starts
    try:
        assert diagnosing()
        with no_gc_diagnosis():
            assert not diagnosing()
        assert diagnosing()
    finally:
        disable_gc_diagnosis()
    assert not diagnosing()
    with no_gc_diagnosis():  # not on before: left off after
        assert not diagnosing()
    assert not diagnosing()


def _page_faults_per_allocation(n: int = 200, size: int = 1 << 20) -> float:
    """Minor page faults per allocation of a ``size``-byte numpy array, written and freed ``n``
    times in this process (run on a Dask worker by ``client.run``)."""
    import resource

    import numpy as np

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        block = np.empty(size, dtype=np.uint8)
        block.fill(1)
        del block
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n


_FAULTS_SCRIPT = """
import sys
from tests.optimize.study.test_cluster import _page_faults_per_allocation
from optimize.study.cluster.task import lift_malloc_trim
lifted = lift_malloc_trim() if sys.argv[1] == "lift" else None
_page_faults_per_allocation(20)  # the heap has grown to its working size
print(lifted, _page_faults_per_allocation())
"""


def _faults_in_subprocess(mode: str, env: dict[str, str]) -> tuple[str, float]:
    """(what lift_malloc_trim returned or "None", page faults per 1 MiB array) in a fresh Python
    process with environment ``env``; ``mode`` "lift" lifts the trim first, "keep" does not."""
    out = run_python(["-c", _FAULTS_SCRIPT, mode], env, timeout=120, check=True).stdout.split()
    return out[0], float(out[1])


def test_lifting_dasks_malloc_trim_stops_a_page_fault_per_page_of_every_large_array():
    """With Dask's MALLOC_TRIM_THRESHOLD_ a freed 1 MiB array is unmapped and the next one faults
    in all its 256 pages again; after lift_malloc_trim the heap keeps them (a worker process of
    `run` does not get the variable). Without the variable there is nothing to lift."""
    plain = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    dask_env = {**plain, "MALLOC_TRIM_THRESHOLD_": "65536"}
    lifted, with_lift = _faults_in_subprocess("lift", dask_env)
    _, without_lift = _faults_in_subprocess("keep", dask_env)
    assert lifted == "True"
    assert without_lift >= 200, f"{without_lift=} faults per 1 MiB array (256 pages)"
    assert with_lift < 0.05 * without_lift, f"{with_lift=} vs {without_lift=}"
    assert _faults_in_subprocess("lift", plain)[0] == "False"


def test_local_cluster_workers_allocate_as_worker_processes(tmp_path):
    """`--cluster local`'s worker processes start without Dask's MALLOC_TRIM_THRESHOLD_ and keep
    freed large arrays in the heap, as `run`'s own worker processes do; their event loops run
    with the slower ticks of WORKER_CONFIG."""
    from optimize.study.cluster import connect
    from optimize.study.cluster.session import WORKER_CONFIG

    with connect("local", workers=1, storage=f"sqlite:///{tmp_path / 'x.db'}") as cluster:
        env = cluster.client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        cluster.client.run(_page_faults_per_allocation, 20)
        faults = cluster.client.run(_page_faults_per_allocation)
        tick = cluster.client.run(_dask_setting, "distributed.admin.tick.interval")
    assert list(env.values()) == [None]
    assert all(f < 10 for f in faults.values()), faults
    assert list(tick.values()) == [WORKER_CONFIG["distributed.admin.tick.interval"]]


def _dask_setting(key: str) -> object:
    import dask

    return dask.config.get(key)


def test_the_connected_workers_are_read_from_the_scheduler_not_a_cache_a_refresh_overwrites(
    tmp_path,
):
    """`Cluster.workers()` lists the connected workers every time, while the client's own
    refresh of its cached scheduler info (no per-worker entries) runs beside it: a read of that
    cache once showed no worker, and `run` then failed to submit its loops."""
    import threading

    from optimize.study.cluster import connect

    with connect("local", workers=1, storage=f"sqlite:///{tmp_path / 'x.db'}") as cluster:
        client, stop = cluster.client, threading.Event()

        def refresh() -> None:  # what the client's periodic callback does every 2 s
            while not stop.is_set():
                client.sync(client._update_scheduler_info, n_workers=0)

        refresher = threading.Thread(target=refresh, daemon=True)
        refresher.start()
        try:
            seen = [len(cluster.workers()) for _ in range(300)]
        finally:
            stop.set()
            refresher.join(timeout=10)
    assert set(seen) == {1}, f"{seen.count(0)} of {len(seen)} reads showed no worker"
