"""A chip's health over provenance: stale, out-of-spec, degrading and missing parameters.

:class:`HealthService` judges each current version of a chip against the
:class:`~qops.maintenance.policy.MaintenancePolicy` and recommends the calibration steps that
would fix what it found: the step that produces a flagged parameter, then every step that
runs after it on the same qubit (and the pair steps of its pairs), because their inputs
change with it: the "recalibrate a node, then what depends on it" rule of calibration on a
directed acyclic graph.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from qops.calibration.graph import CALIBRATION_STEPS, Scope, StepName, StepSpec
from qops.maintenance.errors import ChipNotFoundError, InvalidTargetError
from qops.maintenance.policy import Direction, MaintenancePolicy, ParameterPolicy
from qops.provenance.models import ParameterVersion
from qops.provenance.service import ProvenanceService
from qops.provenance.values import ParameterValue
from qops.timeutil import as_utc, utc_now

PAIR_SEPARATOR = "-"
"""Pairs are named ``<qid>-<qid>`` (``Q0-Q1``)."""


class Finding(StrEnum):
    """What can be wrong with a parameter of a qubit or pair."""

    MISSING = "missing"
    STALE = "stale"
    OUT_OF_SPEC = "out-of-spec"
    DEGRADING = "degrading"


class ParameterHealth(BaseModel):
    """The judgement of one parameter of one qubit or pair.

    Attributes:
        parameter_name: The parameter.
        qid: Its qubit or pair.
        entity_id: The current version; ``None`` if missing.
        value: Its value; ``None`` if missing.
        unit: Its unit.
        version: Its version number.
        valid_from: When it was measured.
        age_hours: Hours since then, at the report's time.
        direction: Which way the parameter is better.
        worsening_versions: How many consecutive versions, ending at the current one, each
            came out worse than the one before (beyond their combined errors).
        change_per_day: Change per day over the versions examined (unit per day); ``None``
            with fewer than two numeric versions.
        findings: What is wrong; empty if the parameter is healthy.
        reasons: One sentence per finding.
    """

    model_config = ConfigDict(frozen=True)

    parameter_name: str
    qid: str
    entity_id: str | None = None
    value: ParameterValue | None = None
    unit: str = ""
    version: int | None = None
    valid_from: datetime | None = None
    age_hours: float | None = None
    direction: Direction = Direction.NONE
    worsening_versions: int = 0
    change_per_day: float | None = None
    findings: list[Finding] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class StepRecommendation(BaseModel):
    """One calibration step to run on one qubit or pair, and why.

    Attributes:
        step: The step.
        target: Its qubit or pair.
        flagged: ``parameter:qid`` of the flagged parameters the step produces (empty for a
            step recommended only because it runs after a recalibrated one).
        reasons: Why, one sentence each.
    """

    model_config = ConfigDict(frozen=True)

    step: StepName
    target: str
    flagged: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)


class ChipHealth(BaseModel):
    """The health of every calibrated parameter of a chip, and the steps to run.

    Attributes:
        project_id: The provenance project.
        chip_id: The chip.
        generated_at: The time the ages are measured at.
        parameters: Every current parameter (and every missing one), by qid and name.
        recommendations: Steps to run, in calibration order; empty if all is healthy.
        counts: How many parameters have each finding.
    """

    project_id: str
    chip_id: str
    generated_at: datetime
    parameters: list[ParameterHealth]
    recommendations: list[StepRecommendation]
    counts: dict[Finding, int]

    @property
    def healthy(self) -> bool:
        """Whether nothing was found."""
        return not self.recommendations and not any(self.counts.values())


def _numeric(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _worse(newer: ParameterVersion, older: ParameterVersion, direction: Direction) -> bool:
    """Whether ``newer`` came out worse than ``older`` beyond their combined errors."""
    a, b = _numeric(newer.value), _numeric(older.value)
    if a is None or b is None or direction is Direction.NONE:
        return False
    errors = [e for e in (newer.error, older.error) if e is not None and math.isfinite(e)]
    margin = math.hypot(*errors) if errors else 0.0
    if direction is Direction.HIGHER:
        return a < b - margin
    return a > b + margin


def _change_per_day(chain: Sequence[ParameterVersion]) -> float | None:
    """Change per day between the oldest and newest numeric versions of ``chain``."""
    points = [(v.valid_from, _numeric(v.value)) for v in chain]
    numeric = [(t, x) for t, x in points if x is not None]
    if len(numeric) < 2:
        return None
    (t_new, x_new), (t_old, x_old) = numeric[0], numeric[-1]
    days = (t_new - t_old).total_seconds() / 86400
    return None if days <= 0 else (x_new - x_old) / days


def judge(
    current: ParameterVersion,
    chain: Sequence[ParameterVersion],
    policy: ParameterPolicy,
    now: datetime,
) -> ParameterHealth:
    """Judge one current version.

    Args:
        current: The current version.
        chain: Its chain newest first, starting with ``current`` (at least
            ``policy.trend_length + 1`` versions where there are that many).
        policy: The parameter's rules.
        now: The time ages are measured at.
    """
    findings: list[Finding] = []
    reasons: list[str] = []
    key = f"{current.parameter_name} of {current.qid}"
    age_hours = (now - current.valid_from).total_seconds() / 3600
    if policy.stale_after_hours is not None and age_hours > policy.stale_after_hours:
        findings.append(Finding.STALE)
        reasons.append(
            f"{key} was measured {age_hours:.1f} h ago (limit {policy.stale_after_hours:g} h)"
        )
    value = _numeric(current.value)
    unit = f" {current.unit}" if current.unit else ""
    if value is None and (policy.minimum is not None or policy.maximum is not None):
        findings.append(Finding.OUT_OF_SPEC)
        reasons.append(f"{key} is {current.value!r}, not a finite number")
    elif value is not None:
        if policy.minimum is not None and value < policy.minimum:
            findings.append(Finding.OUT_OF_SPEC)
            reasons.append(f"{key} is {value:g}{unit}, below the minimum {policy.minimum:g}{unit}")
        if policy.maximum is not None and value > policy.maximum:
            findings.append(Finding.OUT_OF_SPEC)
            reasons.append(f"{key} is {value:g}{unit}, above the maximum {policy.maximum:g}{unit}")
    worsening = 0
    for newer, older in itertools.pairwise(chain):
        if not _worse(newer, older, policy.direction):
            break
        worsening += 1
    if policy.direction is not Direction.NONE and worsening >= policy.trend_length:
        findings.append(Finding.DEGRADING)
        oldest = chain[worsening]
        reasons.append(
            f"{key} got worse in each of its last {worsening} versions "
            f"(v{oldest.version} {oldest.value:g}{unit} to v{current.version} "
            f"{current.value:g}{unit}; {policy.direction.value} is better)"
        )
    return ParameterHealth(
        parameter_name=current.parameter_name,
        qid=current.qid,
        entity_id=current.entity_id,
        value=current.value,
        unit=current.unit,
        version=current.version,
        valid_from=current.valid_from,
        age_hours=age_hours,
        direction=policy.direction,
        worsening_versions=worsening,
        change_per_day=_change_per_day(chain),
        findings=list(dict.fromkeys(findings)),
        reasons=reasons,
    )


def _dependents(step: StepName) -> list[StepSpec]:
    """Steps that run after ``step``, directly or through others, in graph order."""
    reached = {step}
    found: list[StepSpec] = []
    for spec in CALIBRATION_STEPS.values():  # topological order
        if any(before in reached for before in spec.after):
            reached.add(spec.name)
            found.append(spec)
    return found


def _producer(parameter_name: str, scope: Scope) -> StepSpec | None:
    """The first step (in graph order) of ``scope`` that produces ``parameter_name``."""
    for spec in CALIBRATION_STEPS.values():
        if spec.scope is scope and parameter_name in spec.outputs:
            return spec
    return None


def _scope_of(qid: str) -> Scope:
    return Scope.PAIR if PAIR_SEPARATOR in qid else Scope.QUBIT


def recommend(flagged: Iterable[ParameterHealth], pairs: Sequence[str]) -> list[StepRecommendation]:
    """The steps that fix the flagged parameters, and the steps that run after them.

    Args:
        flagged: Parameters with findings.
        pairs: The chip's pairs (``Q0-Q1``), for the pair steps after a qubit's steps.
    """
    reasons: dict[tuple[StepName, str], list[str]] = {}
    flags: dict[tuple[StepName, str], list[str]] = {}

    def add(step: StepName, target: str, reason: str, flag: str | None = None) -> None:
        reasons.setdefault((step, target), [])
        flags.setdefault((step, target), [])
        if reason not in reasons[(step, target)]:
            reasons[(step, target)].append(reason)
        if flag is not None and flag not in flags[(step, target)]:
            flags[(step, target)].append(flag)

    for health in flagged:
        producer = _producer(health.parameter_name, _scope_of(health.qid))
        if producer is None:
            continue
        for reason in health.reasons:
            add(producer.name, health.qid, reason, f"{health.parameter_name}:{health.qid}")
        if producer.scope is Scope.PAIR:
            continue
        follows = f"runs after {producer.name} on {health.qid}, whose outputs it uses"
        for dependent in _dependents(producer.name):
            if dependent.scope is Scope.QUBIT:
                add(dependent.name, health.qid, follows)
            else:
                for pair in pairs:
                    if health.qid in pair.split(PAIR_SEPARATOR):
                        add(dependent.name, pair, follows)
    order = {name: index for index, name in enumerate(CALIBRATION_STEPS)}
    return [
        StepRecommendation(step=step, target=target, flagged=flags[(step, target)], reasons=why)
        for (step, target), why in sorted(
            reasons.items(), key=lambda item: (order[item[0][0]], item[0][1])
        )
    ]


def _expected(qid: str) -> tuple[str, ...]:
    """The parameters the step graph produces for a qubit or pair."""
    scope = _scope_of(qid)
    names = (n for s in CALIBRATION_STEPS.values() if s.scope is scope for n in s.outputs)
    return tuple(dict.fromkeys(names))


class HealthService:
    """Judges chips over a provenance store.

    Args:
        provenance: Where the versions are.
        policy: The rules.
    """

    def __init__(self, provenance: ProvenanceService, policy: MaintenancePolicy) -> None:
        self.provenance = provenance
        self.policy = policy

    def chip_health(
        self,
        chip_id: str,
        project_id: str | None = None,
        targets: Sequence[str] | None = None,
        now: datetime | None = None,
    ) -> ChipHealth:
        """Judge every current parameter of a chip and recommend steps.

        One query for the current versions, and one history query per parameter whose
        policy has a direction (its last ``trend_length + 1`` versions).

        Args:
            chip_id: The chip.
            project_id: The project; default the service's.
            targets: The chip's qubits and pairs (``Q0``, ``Q0-Q1``); a target here with no
                version of a parameter its steps produce is reported missing. Default: the
                qids that have versions.
            now: The time ages are measured at; default now.
        """
        at = as_utc(now) if now is not None else utc_now()
        project = self.provenance.default_project_id if project_id is None else project_id
        if not project or not chip_id:
            raise InvalidTargetError("project_id/chip_id", f"{project}/{chip_id}")
        current = self.provenance.current_versions(chip_id, project)
        if not current and not targets and chip_id not in self.provenance.chip_ids(project):
            raise ChipNotFoundError(chip_id, project)
        by_key = {(v.parameter_name, v.qid): v for v in current}
        qids = list(dict.fromkeys([*(targets or ()), *(v.qid for v in current)]))
        results: list[ParameterHealth] = []
        for qid in sorted(qids):
            names = [*_expected(qid), *(n for (n, q) in by_key if q == qid)]
            for name in dict.fromkeys(names):
                version = by_key.get((name, qid))
                if version is None:
                    results.append(
                        ParameterHealth(
                            parameter_name=name,
                            qid=qid,
                            findings=[Finding.MISSING],
                            reasons=[f"{name} of {qid} has never been calibrated on {chip_id}"],
                        )
                    )
                    continue
                rules = self.policy.of(name)
                chain = [version]
                if rules.direction is not Direction.NONE:
                    chain = self.provenance.history(
                        name, qid, rules.trend_length + 1, project, chip_id
                    ).versions
                results.append(judge(version, chain, rules, at))
        pairs = [q for q in qids if _scope_of(q) is Scope.PAIR]
        counts = {finding: 0 for finding in Finding}
        for health in results:
            for finding in health.findings:
                counts[finding] += 1
        return ChipHealth(
            project_id=project,
            chip_id=chip_id,
            generated_at=at,
            parameters=results,
            recommendations=recommend((h for h in results if h.findings), pairs),
            counts=counts,
        )
