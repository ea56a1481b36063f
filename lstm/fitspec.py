"""What one fit needs besides its data and seeds, in one typed record: :class:`FitSpec`.

:func:`lstm.train.fit_predict` and :func:`lstm.train.fit_ensemble` (and the window fit the study
and the FreqAI model share, :func:`strategy.pipeline.fit_window`) take the feature matrix, the
labels, the seeds and one :class:`FitSpec`: which rows train and which are predicted, the
hyperparameters, the label horizon, the feature names, the device, FreqAI's weights and noise
(:class:`~lstm.pipeline.FitPipeline`) and how the fit runs (:class:`FitOptions`: callbacks,
logger, threads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lstm.params import LSTMParams
from lstm.pipeline import FitPipeline

if TYPE_CHECKING:  # Lightning loads with the first fit
    from lightning.pytorch.callbacks import Callback

    from lstm.trainer import LoggerSpec

__all__ = ["FIT_THREADS", "FitOptions", "FitSpec"]

FIT_THREADS = 1
"""torch intra-op threads of every fit and its predictions.

CPU kernels reduce in a different order with another thread count (measured: predictions move by
~5e-8 between 1 and 2 threads), and a quantile threshold can turn that into another trade. A fixed
count makes a model's weights the same in any worker process, whatever the number of workers, and
inside freqtrade; one thread per fit was also the faster setting for these small LSTMs on CPU.
"""


@dataclass(frozen=True)
class FitOptions:
    """How a fit runs, apart from its data, hyperparameters, seeds and device.

    The defaults are what the study and the FreqAI model use.

    Attributes:
        callbacks: Extra Lightning callbacks (e.g. a pruning callback).
        logger: False (none), True (Lightning's default), a Lightning ``Logger``, or a directory
            for a TensorBoard logger.
        threads: torch intra-op threads during the fit and its predictions
            (:data:`FIT_THREADS`; results are bitwise reproducible only at the same count).
    """

    callbacks: Sequence[Callback] = ()
    logger: LoggerSpec = False
    threads: int = FIT_THREADS


@dataclass(frozen=True)
class FitSpec:
    """One fit's rows and settings: everything but the data and the seeds.

    Attributes:
        train: contiguous training rows. Rows whose window or label is non-finite are dropped;
            the last ``params.val_fraction`` of the usable training samples (time order) is the
            early-stopping validation set, only the part before it is shuffled.
        predict: contiguous rows to predict (e.g. the fold's test window); windows may reach
            rows before ``predict.start`` (past data).
        params: the hyperparameters.
        label_horizon: h when ``labels[i] = T[i + h]``: the last h fit samples before the
            validation part are dropped so no fit label overlaps the validation period.
        feature_names: names of the feature columns (kept for checkpoints), or None.
        accelerator: ``"auto"`` (cuda, then mps, then cpu), ``"gpu"`` (cuda, then mps), or
            another Lightning accelerator name (``"cpu"``, ``"cuda"``, ``"mps"``).
        pipeline: FreqAI's recency weights and training noise (the default is off: the fit is then
            exactly the unweighted, noise-free one); noise is drawn from each member's seed.
        options: callbacks, logger and thread count (:class:`FitOptions`).
    """

    train: slice
    predict: slice
    params: LSTMParams
    label_horizon: int = 0
    feature_names: Sequence[str] | None = None
    accelerator: str = "auto"
    pipeline: FitPipeline = field(default_factory=FitPipeline)
    options: FitOptions = field(default_factory=FitOptions)
