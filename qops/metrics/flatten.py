"""Flattening a get_dynamic payload into Prometheus samples.

A metric is a number (one sample without labels) or a tree whose ``__labels__`` name, by
depth, the labels its keys are values of: ``{"t1": {"__labels__": ["qubit"], "q0": 0.9}}``
gives ``qi_t1{qubit="q0"} 0.9``. A ``null`` leaf or an omitted branch is no sample. A metric
that cannot be flattened (wrong depth, a leaf that is not a finite number, e.g. a string,
a boolean or NaN, an invalid name) is dropped whole with its reason; the others are kept.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

PREFIX = "qi_"
"""Prefix of every metric 2300 reports, by the protocol."""

LABELS_KEY = "__labels__"

_NOT_NAME_CHAR = re.compile(r"[^a-zA-Z0-9_]")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_HAS_ALNUM = re.compile(r"[a-zA-Z0-9]")

Sample = tuple[tuple[str, ...], float]
"""Label values (in the order of the family's label names) and the value."""


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """One metric with all its samples."""

    name: str
    source_name: str
    label_names: tuple[str, ...]
    samples: tuple[Sample, ...]


@dataclass(frozen=True, slots=True)
class DroppedMetric:
    """A metric left out, and why."""

    source_name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Flattened:
    """The result of flattening one payload."""

    metrics: tuple[MetricFamily, ...]
    dropped: tuple[DroppedMetric, ...]

    @property
    def sample_count(self) -> int:
        """Number of samples over all metrics."""
        return sum(len(metric.samples) for metric in self.metrics)


class _DropError(Exception):
    """A metric cannot be flattened; the message is the reason."""


def metric_name(source_name: str, prefix: str = PREFIX) -> str:
    """Return the Prometheus name of a reported metric: ``prefix`` + the name with every
    character outside ``[a-zA-Z0-9_]`` replaced by ``_``.

    Raises:
        ValueError: The name is empty or has no letter or digit.
    """
    if not _HAS_ALNUM.search(source_name):
        raise ValueError(f"metric name {source_name!r} has no letter or digit")
    return prefix + _NOT_NAME_CHAR.sub("_", source_name)


def flatten_dynamic(
    payload: Mapping[str, object],
    *,
    prefix: str = PREFIX,
    reserved: frozenset[str] = frozenset(),
) -> Flattened:
    """Flatten a get_dynamic payload; dropped metrics are logged with their reason.

    Args:
        payload: The get_dynamic payload.
        prefix: Prefix of every metric name.
        reserved: Prometheus names the caller exposes itself (e.g. ``qi_up``); a reported
            metric with such a name is dropped.
    """
    metrics: list[MetricFamily] = []
    dropped: list[DroppedMetric] = []
    seen: dict[str, str] = {}
    for source_name, tree in payload.items():
        try:
            name = _checked_name(source_name, prefix, reserved, seen)
            metrics.append(_flatten_one(source_name, name, tree))
            seen[name] = source_name
        except _DropError as e:
            logger.warning("dropped metric %r: %s", source_name, e)
            dropped.append(DroppedMetric(source_name=source_name, reason=str(e)))
    return Flattened(metrics=tuple(metrics), dropped=tuple(dropped))


def _checked_name(
    source_name: str, prefix: str, reserved: frozenset[str], seen: Mapping[str, str]
) -> str:
    try:
        name = metric_name(source_name, prefix)
    except ValueError as e:
        raise _DropError(str(e)) from None
    if name in reserved:
        raise _DropError(f"{name} is reserved for the monitor's own metric")
    if name in seen:
        raise _DropError(f"{name} is already the name of reported metric {seen[name]!r}")
    return name


def _flatten_one(source_name: str, name: str, tree: object) -> MetricFamily:
    if tree is None:
        return MetricFamily(name, source_name, (), ())
    if not isinstance(tree, Mapping):
        return MetricFamily(name, source_name, (), (((), _number(tree, ())),))
    labels = tree.get(LABELS_KEY)
    if not isinstance(labels, list) or not labels:
        raise _DropError(f"{LABELS_KEY} must be a non-empty list of label names, found {labels!r}")
    for label in labels:
        if not isinstance(label, str) or not _LABEL_NAME.match(label) or label.startswith("__"):
            raise _DropError(f"label name {label!r} is not a valid Prometheus label name")
    if len(set(labels)) != len(labels):
        raise _DropError(f"{LABELS_KEY} {labels} names a label twice")
    samples: list[Sample] = []
    _walk(tree, (), len(labels), samples)
    return MetricFamily(name, source_name, tuple(labels), tuple(samples))


def _walk(
    node: Mapping[str, object], path: tuple[str, ...], depth: int, samples: list[Sample]
) -> None:
    for key, child in node.items():
        if not path and key == LABELS_KEY:
            continue
        here = (*path, key)
        if child is None:
            continue
        if not _utf8(key):
            # Python's json reads "\ud800" into a str no UTF-8 scrape can carry.
            raise _DropError(f"label value {'/'.join(here)!r} is not valid UTF-8 text")
        if isinstance(child, Mapping):
            if len(here) >= depth:
                raise _DropError(
                    f"{'/'.join(here)} is an object at depth {len(here)} but "
                    f"{LABELS_KEY} has {depth} label(s)"
                )
            _walk(child, here, depth, samples)
        else:
            value = _number(child, here)
            if len(here) != depth:
                raise _DropError(
                    f"{'/'.join(here)} is a value at depth {len(here)} but "
                    f"{LABELS_KEY} has {depth} label(s)"
                )
            samples.append((here, value))


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _number(value: object, path: tuple[str, ...]) -> float:
    where = "/".join(path) or "value"
    if isinstance(value, bool) or not isinstance(value, int | float):
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:80] + "..."
        raise _DropError(f"{where} is {type(value).__name__} {shown}, not a number")
    try:
        number = float(value)
    except OverflowError:
        raise _DropError(f"{where} is an integer too large for a float") from None
    if not math.isfinite(number):
        raise _DropError(f"{where} is {number!r}, not a finite number")
    return number
