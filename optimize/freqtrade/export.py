"""Export one trial of a study to freqtrade: config, strategy parameter file, README.

``python -m optimize export --study-name NAME [--storage URL] [--trial N] --out DIR`` writes::

    DIR/config.json                          freqtrade config (FreqAI enabled)
    DIR/strategy/LstmOptunaStrategy.py       symlink to strategy/freqtrade/lstm_strategy.py
    DIR/strategy/LstmOptunaStrategy.json     the strategy's parameters (freqtrade format)
    DIR/user_data/                           freqtrade's user-data folder (FreqAI models go here)
    DIR/study_trades.json                    the study's trades per span (what verify matches)
    DIR/README.md                            the exact freqtrade command

* The strategy code is this repository's file: the symlink only gives freqtrade a place to find
  the parameter file, which freqtrade reads from ``<strategy file name>.json`` next to the
  strategy file it resolved (the symlink's path). Nothing is copied and freqtrade is unchanged.
* ``config.json``: pairs (StaticPairList), timeframe, fee, stake settings and the exit flags of
  the study's backtest settings (in futures mode ``trading_mode``, ``margin_mode``, the
  perpetuals, ``liquidation_buffer`` and order-book pricing); exchange binance without keys;
  ``dry_run: true``; ``freqai``:
  enabled, a new ``identifier`` per export (FreqAI caches predictions per identifier),
  ``train_period_days`` (``train_days`` plus the purge gap, whole days; the model keeps the
  study's train window of it) / ``backtest_period_days`` (``test_days``),
  ``feature_parameters`` from the run config's features (``label_period_candles`` = the trial's
  label horizon; FreqAI's data pipeline: the run config's keys with the trial's own),
  ``model_training_parameters`` = the trial's LSTM parameters,
  ``conv_width`` = window size, ``extra_returns_per_train`` for the quantile thresholds; the
  static FreqAI settings come from ``configs/freqtrade/freqai_template.json``.
  stoploss, minimal_roi and trailing settings live in the parameter file (config values would
  override it).
* Same inputs as the study: ``startup_candle_count`` makes freqtrade load back to the holdout's
  warm-up start (``lstm_optuna.warmup_start``, where the strategy starts its indicators); the
  ``lstm_optuna`` block holds the seed, ``ensemble_size``, ``train_days``, ``purge_candles``,
  both spans (dates, timerange, warm-up start), the trading mode and the markets file the study
  read (``markets``, served to freqtrade by ``verify``) for the model and ``verify``.
* The parameter file holds the trial's weights and thresholds and, in futures mode, its direction
  and leverage (``futures`` space: ``trade_direction``, ``trade_leverage``).
* ``study_trades.json``: the trial's walk-forward trades (stored with the trial) and its holdout
  trades (the holdout record, computed and stored in the study when missing).
* :func:`build_export` builds every file's content in memory (an :class:`ExportBundle`);
  :meth:`ExportBundle.write` puts them on disk.
* Every artefact carries the lstm-optuna version, the study name, the trial number and the
  trial's parameters (``lstm_optuna`` block of the config and of the parameter file; README).
* No secrets: exchange key/secret are empty, a storage password is masked.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna

from base.errors import OutputError
from optimize._version import __version__
from optimize.config import RunConfig
from optimize.evaluation.holdout import holdout_warmup_start
from optimize.freqtrade.timerange import (
    span_timerange,
    startup_candles,
    study_plan,
    study_warmup_start,
)
from optimize.freqtrade.trial_config import build_freqtrade_config, build_parameter_file
from optimize.markets import markets_file_of
from optimize.search.space import TrialParams
from optimize.study.holdout import evaluate_trial_holdout
from optimize.study.records import StudyRecord, TrialRecord, study_config
from optimize.study.selection import select_trial
from optimize.study.storage import DEFAULT_STORAGE, load_existing_study, redact
from optimize.walkforward import WalkForwardPlan
from strategy.freqtrade import MODEL_NAME, PACKAGE_DIR, STRATEGY_FILE, STRATEGY_NAME

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
README_FILE = "README.md"
TRADES_FILE = "study_trades.json"
"""The study's trades of the exported trial per span (what ``verify`` compares with freqtrade's)."""
TRADES_FORMAT = 1
USER_DATA = "user_data"
STRATEGY_DIR = "strategy"
"""Export sub-folder with the strategy link and its parameter file (``--strategy-path``)."""


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it holds."""

    out_dir: Path
    config_path: Path
    params_path: Path
    strategy_link: Path
    readme_path: Path
    study_name: str
    trial_number: int
    identifier: str
    timerange: str | None
    command: str


def absolute_storage(url: str) -> str:
    """A relative SQLite URL made absolute (so the export works from any directory)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(Path(url[len(prefix) :]).resolve())
    return url


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "study"


def new_identifier(study_name: str, trial_number: int) -> str:
    """A FreqAI identifier unique to one export (study, trial, time, random suffix)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{_safe(study_name)}-t{trial_number}-{stamp}-{uuid.uuid4().hex[:6]}"


def _command(
    config_path: Path, strategy_dir: Path, datadir: Path, user_data: Path, timerange: str | None
) -> str:
    parts = [
        "freqtrade backtesting",
        f"--config {config_path}",
        f"--strategy {STRATEGY_NAME}",
        f"--strategy-path {strategy_dir}",
        f"--freqaimodel {MODEL_NAME}",
        f"--freqaimodel-path {PACKAGE_DIR}",
        f"--datadir {datadir}",
        f"--userdir {user_data}",
    ]
    if timerange:
        parts.append(f"--timerange {timerange}")
    return " ".join(parts)


def _readme(meta: dict[str, Any], command: str, out_dir: Path) -> str:
    params = json.dumps(meta["params"], indent=2, sort_keys=True)
    holdout = meta.get("holdout") or {}
    return "\n".join(
        [
            f"# lstm-optuna export: study {meta['study_name']!r}, trial {meta['trial_number']}",
            "",
            (
                f"lstm-optuna {meta['version']}, exported {meta['exported_at']}, study storage "
                f"`{meta['storage']}`, FreqAI identifier `{meta['identifier']}`."
            ),
            "",
            "Backtest the trial with freqtrade over the study's holdout"
            + (f" ({holdout.get('start')} .. {holdout.get('end')}):" if holdout else ":"),
            "",
            "```",
            command,
            "```",
            "",
            (
                "freqtrade's CLI loads the exchange's markets over the network; offline, "
                "in-process and next to the study's own holdout figures: `python -m optimize "
                f"verify --export {out_dir}`."
            ),
            "",
            (
                "Files: `config.json` (freqtrade config, FreqAI section), "
                f"`{STRATEGY_DIR}/{STRATEGY_NAME}.json` (strategy parameters), "
                f"`{STRATEGY_DIR}/{STRATEGY_NAME}.py` (link to the strategy in the repository), "
                f"`{USER_DATA}/` (freqtrade's user data; FreqAI models)."
            ),
            "",
            "Trial parameters:",
            "",
            "```json",
            params,
            "```",
            "",
        ]
    )


def _parameter_ranges(space: dict[str, Any], params: TrialParams) -> dict[str, list[float]]:
    """Hyperopt ranges of the threshold parameters from the study's search space (when searched)."""
    ranges: dict[str, list[float]] = {}
    for key, name, value in (
        ("signal.entry", "entry_threshold", params.signal.entry),
        ("signal.exit_gap", "exit_gap", params.signal.exit_gap),
    ):
        spec = space.get(key) or {}
        if spec.get("type") in ("float", "int") and spec["low"] <= value <= spec["high"]:
            ranges[name] = [float(spec["low"]), float(spec["high"])]
    return ranges


def export_study_trial(
    study: optuna.Study,
    out_dir: Path | str,
    *,
    trial_number: int | None = None,
    storage: str | None = None,
) -> ExportResult:
    """Export one COMPLETE trial of ``study`` (default: the best) into ``out_dir``.

    Args:
        study: a study made by this project's runner.
        out_dir: output folder (created; existing export files are overwritten).
        trial_number: the trial; None: the best trial.
        storage: the storage URL to record (a password is masked).

    Raises:
        ValueError: no such trial, a trial that is not COMPLETE (named with its state), a study
            without a stored run config.
    """
    trial = select_trial(study, trial_number)
    config = study_config(study)
    record, study_record = TrialRecord.of(trial), StudyRecord.of(study)
    params = TrialParams.from_dict(record.params)
    space = study_record.fingerprint.get("space", {})
    spans: dict[str, Any] = {}
    if record.schema >= 2:  # schema 1 trials stored no trades
        spans["walkforward"] = {"trades": record.trades, "metrics": record.oos_metrics}
    if config.walkforward.holdout_days > 0:
        holdout = evaluate_trial_holdout(study, trial)  # stored in the study; reused when present
        spans["holdout"] = {"trades": holdout.trades, "metrics": holdout.metrics}
    return build_export(
        out_dir,
        config,
        params,
        study_name=study.study_name,
        trial_number=trial.number,
        trial_values=list(trial.values),
        storage=storage,
        extra={
            "objective": study_record.objective,
            "parameter_ranges": _parameter_ranges(space, params),
            "oos_metrics": record.oos_metrics,
        },
        study_trades=spans,
    ).write()


@dataclass(frozen=True)
class ExportBundle:
    """An export built and not yet written: the content of every file and where it goes
    (:func:`build_export`); :meth:`write` puts it on disk.

    Attributes:
        out_dir: the export folder (absolute).
        config: the freqtrade config (:data:`CONFIG_FILE`).
        parameter_file: the strategy's parameter file (``strategy/<strategy>.json``).
        study_trades: the :data:`TRADES_FILE` document, or None (no file; a stale one is removed).
        readme: the README's text.
        study_name, trial_number: the trial exported.
        identifier: the FreqAI identifier of this export.
        timerange: the holdout's freqtrade timerange (None: no holdout).
        command: the freqtrade command that backtests the export.
    """

    out_dir: Path
    config: dict[str, Any]
    parameter_file: dict[str, Any]
    study_trades: dict[str, Any] | None
    readme: str
    study_name: str
    trial_number: int
    identifier: str
    timerange: str | None
    command: str

    @property
    def config_path(self) -> Path:
        return self.out_dir / CONFIG_FILE

    @property
    def strategy_dir(self) -> Path:
        return self.out_dir / STRATEGY_DIR

    @property
    def params_path(self) -> Path:
        return self.strategy_dir / f"{STRATEGY_NAME}.json"

    def write(self) -> ExportResult:
        """Write the files (folders created, existing export files overwritten; the strategy is
        linked, not copied).

        Raises:
            OutputError: a file or folder of the export cannot be written (named).
        """
        out = self.out_dir
        readme_path = out / README_FILE
        with _writing(out):
            self.strategy_dir.mkdir(parents=True, exist_ok=True)
            (out / USER_DATA).mkdir(exist_ok=True)
            self.config_path.write_text(json.dumps(self.config, indent=2) + "\n", encoding="utf-8")
            trades = out / TRADES_FILE
            if self.study_trades is not None:
                trades.write_text(json.dumps(self.study_trades, indent=1) + "\n", encoding="utf-8")
            elif trades.exists():
                trades.unlink()
            self.params_path.write_text(
                json.dumps(self.parameter_file, indent=2) + "\n", encoding="utf-8"
            )
            link = _link_strategy(self.strategy_dir)
            readme_path.write_text(self.readme, encoding="utf-8")
        logger.info(
            "exported trial %d of study %s to %s (identifier %s)",
            self.trial_number,
            self.study_name,
            out,
            self.identifier,
        )
        return ExportResult(
            out,
            self.config_path,
            self.params_path,
            link,
            readme_path,
            self.study_name,
            self.trial_number,
            self.identifier,
            self.timerange,
            self.command,
        )


def build_export(
    out_dir: Path | str,
    config: RunConfig,
    params: TrialParams,
    *,
    study_name: str,
    trial_number: int,
    trial_values: list[float] | None = None,
    storage: str | None = None,
    extra: dict[str, Any] | None = None,
    study_trades: dict[str, Any] | None = None,
) -> ExportBundle:
    """The export files of ``params`` under ``config`` (the part that needs no study), built in
    memory; nothing is written (:meth:`ExportBundle.write` does).

    Args:
        out_dir: the export folder the files will be written to (their paths are in the config,
            the README and the command).
        config: the study's run config (pairs, features, walk-forward and backtest settings).
        params: the trial's parameters.
        study_name, trial_number, trial_values: recorded in every artefact.
        storage: the study's storage URL to record (a password is masked).
        extra: further entries of the config's ``lstm_optuna`` block.
        study_trades: the study's trades and metrics per span (``walkforward``, ``holdout``),
            for :data:`TRADES_FILE` with each span's dates (none: no file).

    Raises:
        ConfigError: see :func:`build_freqtrade_config`.
        DataError: the data cannot make the study's plan.
    """
    plan = study_plan(config)
    out = Path(out_dir).resolve()
    strategy_dir = out / STRATEGY_DIR
    identifier = new_identifier(study_name, trial_number)
    exported_at = datetime.now(UTC).isoformat(timespec="seconds")
    holdout = plan.holdout
    tf = config.data.timeframe
    timerange = None if holdout is None else span_timerange(holdout.start, holdout.end, tf)
    windows = plan.to_freqai()
    spans = export_spans(config, plan)
    metadata = {
        "version": __version__,
        "study_name": study_name,
        "trial_number": trial_number,
        "trial_values": list(trial_values or []),
        "params": params.to_dict(),
        "exported_at": exported_at,
    }
    settings = {
        **metadata,
        "storage": redact(absolute_storage(storage)) if storage else None,
        "identifier": identifier,
        **_run_settings(config, spans, windows),
        **(extra or {}),
    }
    ft = build_freqtrade_config(
        config,
        params,
        identifier=identifier,
        settings=settings,
        user_data_dir=out / USER_DATA,
        strategy_path=strategy_dir,
    )
    default_span = spans.get("holdout") or spans["walkforward"]
    ft["startup_candle_count"] = startup_candles(
        default_span["start"],
        windows["train_period_days"],
        default_span["warmup_start"],
        config.data.timeframe,
    )
    param_file = build_parameter_file(params, config, metadata=metadata, export_time=exported_at)
    datadir = Path(settings["datadir"]) / config.data.exchange
    command = _command(out / CONFIG_FILE, strategy_dir, datadir, out / USER_DATA, timerange)
    trades = None
    if study_trades:
        trades = {
            "format": TRADES_FORMAT,
            "version": __version__,
            "study_name": study_name,
            "trial_number": trial_number,
            "spans": {name: {**spans[name], **value} for name, value in study_trades.items()},
        }
    return ExportBundle(
        out_dir=out,
        config=ft,
        parameter_file=param_file,
        study_trades=trades,
        readme=_readme(settings, command, out),
        study_name=study_name,
        trial_number=trial_number,
        identifier=identifier,
        timerange=timerange,
        command=command,
    )


@contextlib.contextmanager
def _writing(out: Path) -> Iterator[None]:
    """Within the block, a file or folder of the export that cannot be written is an
    :class:`~base.errors.OutputError` naming it."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or out
        raise OutputError(
            f"cannot write the export to {out}: {where}: {exc.strerror or exc}; expected a "
            "writable folder."
        ) from None


def export_spans(config: RunConfig, plan: WalkForwardPlan) -> dict[str, dict[str, Any]]:
    """The study's spans as the export records them: ``walkforward`` and (when the plan has one)
    ``holdout``, each with its ISO ``start``/``end``, ``warmup_start`` and freqtrade
    ``timerange``; the walk-forward span also says whether FreqAI's retraining schedule matches
    the study's folds (``freqai_schedule``: ``step == test_days``)."""
    tf = config.data.timeframe
    wf_start, wf_end = plan.walkforward_span
    spans: dict[str, dict[str, Any]] = {
        "walkforward": {
            "start": wf_start.isoformat(),
            "end": wf_end.isoformat(),
            "warmup_start": study_warmup_start(config).isoformat(),
            "timerange": span_timerange(wf_start, wf_end, tf),
            "freqai_schedule": config.walkforward.step == config.walkforward.test_days,
        }
    }
    holdout = plan.holdout
    if holdout is not None:
        spans["holdout"] = {
            "start": holdout.start.isoformat(),
            "end": holdout.end.isoformat(),
            "warmup_start": holdout_warmup_start(config).isoformat(),
            "timerange": span_timerange(holdout.start, holdout.end, tf),
        }
    return spans


def _run_settings(
    config: RunConfig, spans: dict[str, dict[str, Any]], windows: dict[str, Any]
) -> dict[str, Any]:
    """The run's settings in the ``lstm_optuna`` block, in their recorded order: features, seed,
    data (with the markets file the study read, which ``verify`` serves to freqtrade), both
    spans, FreqAI windows and the walk-forward/ensemble settings the model needs."""
    return {
        "features": list(config.features.features),
        "seed": config.study.seed,
        "accelerator": config.training.accelerator,
        "datadir": str(Path(config.data.path).resolve()),
        "exchange": config.data.exchange,
        "trading_mode": config.backtest.trading_mode,
        "markets": str(Path(markets_file_of(config)).resolve()),
        "holdout": spans.get("holdout"),
        "walkforward": spans["walkforward"],
        "freqai_windows": windows,
        "train_days": config.walkforward.train_days,
        "purge_candles": config.walkforward.purge_candles,
        "ensemble_size": config.training.ensemble_size,
        "warmup_start": (spans.get("holdout") or spans["walkforward"])["warmup_start"],
        "timeframe": config.data.timeframe,
    }


def _link_strategy(strategy_dir: Path) -> Path:
    """(Re)create the symlink ``strategy_dir/<strategy>.py`` to the repository's strategy file."""
    link = strategy_dir / f"{STRATEGY_NAME}.py"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(STRATEGY_FILE)
    return link


def export_trial(
    study_name: str,
    out_dir: Path | str,
    *,
    storage: str = DEFAULT_STORAGE,
    trial_number: int | None = None,
) -> ExportResult:
    """Load ``study_name`` from ``storage`` and export a trial (see :func:`export_study_trial`).

    Raises:
        ValueError: no such study in the storage, or see :func:`export_study_trial`.
    """
    url = absolute_storage(storage)
    study = load_existing_study(url, study_name)
    return export_study_trial(study, out_dir, trial_number=trial_number, storage=url)


__all__ = [
    "ExportBundle",
    "ExportResult",
    "absolute_storage",
    "build_export",
    "export_spans",
    "export_study_trial",
    "export_trial",
    "new_identifier",
]
