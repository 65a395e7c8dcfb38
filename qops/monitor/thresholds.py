"""Thresholds on get_dynamic values: notice when a reported value leaves its spec.

:class:`ThresholdWatcher` is handed every flattened get_dynamic answer (the monitor's
``on_dynamic`` callback). It reports each sample (a metric of one qubit or pair) that has
crossed out of its bounds since the previous answer, once per crossing: a value that stays
out of spec is reported again only after it came back in. What a crossing leads to is the
caller's :class:`OutOfSpecHandler` (the monitor flow emits a Prefect event); this module
knows nothing of Prefect.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from qops.metrics.flatten import Flattened

logger = logging.getLogger(__name__)


class MetricThreshold(BaseModel):
    """The in-spec bounds of one reported metric (inclusive, in its unit).

    Attributes:
        metric: The metric's name as 2300 reports it (``t1``, ``cz_fidelity``).
        minimum: Lowest in-spec value; ``None``: no lower bound.
        maximum: Highest in-spec value; ``None``: no upper bound.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str = Field(min_length=1)
    minimum: float | None = None
    maximum: float | None = None

    def violated_by(self, value: float) -> bool:
        """Whether ``value`` is outside the bounds (a non-finite value always is)."""
        if not math.isfinite(value):
            return True
        if self.minimum is not None and value < self.minimum:
            return True
        return self.maximum is not None and value > self.maximum


class OutOfSpec(BaseModel):
    """A reported value that crossed out of its bounds.

    Attributes:
        chip_id: The chip the backend serves.
        metric: The metric.
        labels: Its labels (``{"qubit": "q1"}``, ``{"qubit1": "q0", "qubit2": "q1"}``).
        qids: The qubits the labels name, in qops form (``Q1``).
        value: The reported value.
        minimum: The lower bound it was judged against.
        maximum: The upper bound.
    """

    model_config = ConfigDict(frozen=True)

    chip_id: str
    metric: str
    labels: dict[str, str]
    qids: list[str]
    value: float
    minimum: float | None = None
    maximum: float | None = None


class OutOfSpecHandler(Protocol):
    """What is done with a crossing (the monitor flow emits an event)."""

    def __call__(self, crossing: OutOfSpec, /) -> None:
        """Handle one crossing."""
        ...


def _qid(label_value: str) -> str:
    """``q1`` (the protocol's label form) -> ``Q1``."""
    return label_value.upper()


class ThresholdWatcher:
    """Reports samples that crossed out of their bounds between get_dynamic answers.

    Args:
        chip_id: The chip the backend serves (named in every crossing).
        thresholds: Bounds per metric; metrics without bounds are not judged.
        handler: Called once per crossing.
    """

    def __init__(
        self, chip_id: str, thresholds: Iterable[MetricThreshold], handler: OutOfSpecHandler
    ) -> None:
        self.chip_id = chip_id
        self.thresholds: Mapping[str, MetricThreshold] = {t.metric: t for t in thresholds}
        self.handler = handler
        self._out: set[tuple[str, tuple[str, ...]]] = set()

    def observe(self, flattened: Flattened) -> list[OutOfSpec]:
        """Judge one answer; call the handler for, and return, the new crossings."""
        crossings: list[OutOfSpec] = []
        seen_out: set[tuple[str, tuple[str, ...]]] = set()
        for family in flattened.metrics:
            threshold = self.thresholds.get(family.source_name)
            if threshold is None:
                continue
            for label_values, value in family.samples:
                if not threshold.violated_by(value):
                    continue
                key = (family.source_name, label_values)
                seen_out.add(key)
                if key in self._out:
                    continue
                crossings.append(
                    OutOfSpec(
                        chip_id=self.chip_id,
                        metric=family.source_name,
                        labels=dict(zip(family.label_names, label_values, strict=True)),
                        qids=[_qid(v) for v in label_values],
                        value=value,
                        minimum=threshold.minimum,
                        maximum=threshold.maximum,
                    )
                )
        self._out = seen_out
        for crossing in crossings:
            logger.warning(
                "%s of %s on chip %s is %g, out of spec [%s, %s]",
                crossing.metric,
                "-".join(crossing.qids) or "the chip",
                crossing.chip_id,
                crossing.value,
                crossing.minimum,
                crossing.maximum,
            )
            self.handler(crossing)
        return crossings
