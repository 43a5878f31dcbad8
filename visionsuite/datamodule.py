"""What the pipeline asks of every DataModule, declared once with its defaults.

``run.py`` builds ``data`` and, before any logger or folder exists, asks it to check its files; it compares its
class count with the model's, chooses the checkpoint to test from its splits, and in ``mode=predict`` asks what it
needs. Every DataModule of the suite subclasses :class:`SuiteDataModule` and overrides only what differs.
"""

from __future__ import annotations

import pytorch_lightning as pl

from visionsuite.errors import ConfigError


class SuiteDataModule(pl.LightningDataModule):
    """Base of the suite's DataModules: the data-side contract of ``visionsuite.pipeline``.

    Class attributes (a subclass may turn any of them into a property):

    * ``num_classes``: the class count, known before ``setup`` (``None``: not a classification-style dataset, or
      known only later); a model whose ``num_classes`` differs is refused with one message.
    * ``has_validation_split``: ``False`` when the protocol has none (re-ID's paper protocol): no checkpoint is
      then selected by ``monitor``, and the last one is tested.
    * ``validates_on_test_split``: ``True`` when validation runs on the test split (the CIFAR papers): the final
      model is tested, never one chosen by a test-split metric.
    * ``predicts_from_own_inputs``: ``True`` when ``mode=predict`` reads only its own inputs
      (:meth:`check_predict_data`), not the training data.
    """

    num_classes: int | None = None
    has_validation_split: bool = True
    validates_on_test_split: bool = False
    predicts_from_own_inputs: bool = False

    def check_data(self) -> None:
        """Raise one clear error (naming the path and the fix) when the data is missing, laid out wrongly or
        corrupt. Called before any logger or folder is created; cheap (file names and headers, not every byte)."""

    def check_predict_data(self) -> None:
        """What ``mode=predict`` checks when :attr:`predicts_from_own_inputs` (instead of :meth:`check_data`)."""


def check_declared_num_classes(declared: int | None, found: int, where: str, fix: str = "") -> None:
    """``data.num_classes`` (the one source of a dataset's class count: models interpolate ``${data.num_classes}``)
    against the count the dataset defines (``where``: the dataset or the file that says so)."""
    if declared is None or int(declared) == found:
        return
    raise ConfigError(f"data.num_classes={declared}, but {where} has {found} classes; "
                      + (fix or f"set data.num_classes={found} (the model follows it)."))


__all__ = ["SuiteDataModule", "check_declared_num_classes"]
