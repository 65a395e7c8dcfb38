"""The ``maintain`` flow: keep a chip calibrated by checking it and recalibrating what fails.

Within one exclusive calibration session (the chip's CALIBRATING lease), the flow judges the
chip's recorded versions (:mod:`qops.maintenance.health`: missing, stale, out of spec,
degrading) and walks the step graph from the roots, step by step (all targets of a step
concurrently):

- a step whose parameters health flagged is recalibrated at once;
- every other step is checked (:mod:`qops.maintenance.checks`, a few points at the recorded
  values); a check out of spec, or with bad data, recalibrates the step;
- a recalibrated step is checked again (the verification), and the steps that depend on it
  are checked before anything is done to them: they are recalibrated only if their own
  check fails;
- a step whose prerequisite could not be kept or recalibrated is skipped.

It reports each step and target (checked, kept, recalibrated and why, back in spec or not)
as the Markdown artifact ``maintain-<chip>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run

from qops.calibration.graph import StepName
from qops.calibration.instruments import measurement_context
from qops.calibration.plan import (
    DEFAULT_SEED,
    ChipSpec,
    ordered_steps,
    plan_run,
    targets_of,
)
from qops.calibration.recording import CalibrationOutcome
from qops.calibration.session import calibration_session
from qops.config import MongoSettings
from qops.maintenance.checks import CheckResult, CheckValueError, current_of_check
from qops.maintenance.health import ChipHealth
from qops.maintenance.policy import MaintenancePolicy, MaintenanceSettings, load_policy
from qops.maintenance.report import (
    Action,
    MaintenanceReport,
    NodeReport,
    artifact_key,
    report_markdown,
)
from qops.provenance.config import ProvenanceSettings
from qops.provenance.models import ParameterVersion
from tasks.calibration import CALIBRATION_TASKS
from tasks.maintenance import assess_health, check_step, read_current_versions
from tasks.settings import mongo_settings

_T = TypeVar("_T")


@flow(name="maintain")
def maintain(
    qubits: list[str] | None = None,
    project_id: str | None = None,
    chip_id: str | None = None,
    backend_config: str | None = None,
    database_path: str | None = None,
    seed: int = DEFAULT_SEED,
    wait_s: float = 0.0,
    policy_file: str | None = None,
    mongodb_block: str | None = None,
) -> MaintenanceReport:
    """Check a chip step by step and recalibrate only what fails (and verify it).

    Args:
        qubits: Qubits to maintain (e.g. ``["Q0", "Q1"]``); default all. Coupled pairs whose
            two qubits are selected get ``CheckCZ``.
        project_id: Provenance project; default ``QOPS_PROJECT_ID``.
        chip_id: The chip; default the backend configuration's, else ``QOPS_CHIP_ID``.
        backend_config: Backend YAML giving the chip's qubits and topology.
        database_path: QCoDeS database of the checks and recalibrations; default
            ``<data_dir>/calibration/<chip_id>.db``.
        seed: Seed of the simulated chip.
        wait_s: How long to wait if another calibration of the chip runs (0: refuse).
        policy_file: Maintenance policy YAML; default ``QOPS_MAINTENANCE_POLICY``, else the
            packaged one.
        mongodb_block: Name of a ``qops-mongodb-connection`` block; ``None`` reads ``QOPS_*``.

    Raises:
        PolicyError: The policy file cannot be used.
        UnknownQubitError: A requested qubit is not on the chip.
        ChipBusyError: Another calibration of the chip kept running for ``wait_s``.
        MeasurementDatabaseError: The QCoDeS database cannot be written.
    """
    logger = get_run_logger()
    policy = load_policy(Path(policy_file)) if policy_file else MaintenanceSettings().policy()
    settings = mongo_settings(mongodb_block)
    provenance = ProvenanceSettings()
    target = plan_run(
        settings.data_dir,
        provenance.project_id,
        provenance.chip_id,
        project_id=project_id,
        chip_id=chip_id,
        backend_config=backend_config,
        seed=seed,
        qubits=qubits,
        database_path=database_path,
    )
    project, spec, database = target.project_id, target.spec, target.database
    selected, pairs = target.qubits, target.pairs
    execution_id = str(flow_run.get_id() or f"local-{spec.chip_id}")

    # The lease spans the whole walk, as in the calibrate flow: checks read the values
    # recalibrations write, and no other calibration of the chip may change them meanwhile.
    with calibration_session(settings, spec, project, execution_id, wait_s) as session:
        measurement_context(spec, session.epoch, database, execution_id)
        health = assess_health(settings, policy, spec.chip_id, project, [*selected, *pairs])
        logger.info(
            "maintaining %s (%s, pairs %s) at epoch %d: health flags %d step(s)",
            spec.chip_id,
            ", ".join(selected),
            ", ".join(pairs) or "none",
            session.epoch,
            sum(1 for r in health.recommendations if r.flagged),
        )
        walk = _Walk(
            spec, session.epoch, database, execution_id, project, policy, settings, mongodb_block
        )
        nodes = walk.run(selected, pairs, health)

    report = MaintenanceReport(
        execution_id=execution_id,
        project_id=project,
        chip_id=spec.chip_id,
        epoch=session.epoch,
        database_path=str(database),
        qubits=selected,
        pairs=pairs,
        nodes=nodes,
        changes=session.changes(),
    )
    create_markdown_artifact(
        key=artifact_key(spec.chip_id),
        markdown=report_markdown(report),
        description=f"Maintenance {execution_id} of {spec.chip_id}: checks and recalibrations",
    )
    for node in report.nodes:
        if node.action in (Action.FAILED, Action.SKIPPED) or node.back_in_spec is False:
            logger.warning("%s on %s %s: %s", node.step, node.target, node.action, node.why)
    return report


class _Walk:
    """The walk of one maintenance run over the step graph."""

    def __init__(
        self,
        spec: ChipSpec,
        epoch: int,
        database: Path,
        execution_id: str,
        project_id: str,
        policy: MaintenancePolicy,
        settings: MongoSettings,
        mongodb_block: str | None,
    ) -> None:
        self.spec = spec
        self.epoch = epoch
        self.database = str(database)
        self.execution_id = execution_id
        self.project_id = project_id
        self.policy = policy
        self.settings = settings
        self.mongodb_block = mongodb_block
        self.nodes: dict[tuple[StepName, str], NodeReport] = {}

    def run(self, qubits: list[str], pairs: list[str], health: ChipHealth) -> list[NodeReport]:
        """Check, recalibrate and verify every step on every target; the nodes in order."""
        flagged = {(r.step, r.target): r.reasons for r in health.recommendations if r.flagged}
        for step in ordered_steps():
            targets = targets_of(step, qubits, pairs)
            ready = [t for t in targets if not self._blocked(step.name, step.after, t)]
            current = self._current()
            checks: dict[str, PrefectFuture[CheckResult]] = {}
            recalibrate: dict[str, list[str]] = {}
            for target in ready:
                reasons = flagged.get((step.name, target))
                if reasons:
                    recalibrate[target] = [f"health: {reason}" for reason in reasons]
                    self.nodes[(step.name, target)] = NodeReport(
                        step=step.name, target=target, action=Action.RECALIBRATED
                    )
                    continue
                try:
                    checks[target] = self._check(step.name, target, current)
                except CheckValueError as e:  # a version it needs is not recorded
                    recalibrate[target] = [str(e)]
                    self.nodes[(step.name, target)] = NodeReport(
                        step=step.name, target=target, action=Action.RECALIBRATED
                    )
            for target, future in checks.items():
                result = _result(future)
                if isinstance(result, str):
                    self.nodes[(step.name, target)] = NodeReport(
                        step=step.name, target=target, action=Action.FAILED, why=[result]
                    )
                elif result.passed:
                    self.nodes[(step.name, target)] = NodeReport(
                        step=step.name, target=target, action=Action.KEPT, check=result
                    )
                else:
                    verdict = result.verdict.value
                    recalibrate[target] = [f"check {verdict}: {r}" for r in result.reasons]
                    self.nodes[(step.name, target)] = NodeReport(
                        step=step.name, target=target, action=Action.RECALIBRATED, check=result
                    )
            self._recalibrate(step.name, recalibrate)
        return [self.nodes[key] for key in self._order(qubits, pairs) if key in self.nodes]

    def _order(self, qubits: list[str], pairs: list[str]) -> list[tuple[StepName, str]]:
        return [(s.name, t) for s in ordered_steps() for t in targets_of(s, qubits, pairs)]

    def _blocked(self, step: StepName, after: tuple[StepName, ...], target: str) -> bool:
        for qubit in target.split("-"):
            for before in after:
                node = self.nodes.get((before, qubit))
                if node is None or node.action in (Action.FAILED, Action.SKIPPED):
                    blocker = f"{before} on {qubit} " + (
                        node.action.value if node is not None else "not run"
                    )
                    self.nodes[(step, target)] = NodeReport(
                        step=step, target=target, action=Action.SKIPPED, why=[blocker]
                    )
                    return True
        return False

    def _current(self) -> dict[tuple[str, str], ParameterVersion]:
        versions = read_current_versions(self.settings, self.spec.chip_id, self.project_id)
        return {(v.parameter_name, v.qid): v for v in versions}

    def _check(
        self, step: StepName, target: str, current: dict[tuple[str, str], ParameterVersion]
    ) -> PrefectFuture[CheckResult]:
        return check_step.submit(
            step=step,
            target=target,
            chip=self.spec,
            epoch=self.epoch,
            database_path=self.database,
            execution_id=self.execution_id,
            project_id=self.project_id,
            used=current_of_check(current, step, target),
            policy=self.policy,
            mongodb_block=self.mongodb_block,
        )

    def _recalibrate(self, step: StepName, targets: dict[str, list[str]]) -> None:
        if not targets:
            return
        task = CALIBRATION_TASKS[step]
        futures: dict[str, PrefectFuture[CalibrationOutcome]] = {
            target: task.submit(
                qid=target,
                chip=self.spec,
                epoch=self.epoch,
                database_path=self.database,
                execution_id=self.execution_id,
                project_id=self.project_id,
                chip_id=self.spec.chip_id,
            )
            for target in targets
        }
        done: list[str] = []
        for target, future in futures.items():
            node = self.nodes[(step, target)]
            node.why = targets[target]
            outcome = _result(future)
            if isinstance(outcome, str):
                node.action = Action.FAILED
                node.why.append(f"recalibration failed: {outcome}")
            else:
                node.versions = outcome.versions
                done.append(target)
        if not done:
            return
        current = self._current()
        verifications = {target: self._check(step, target, current) for target in done}
        for target, verification in verifications.items():
            result = _result(verification)
            node = self.nodes[(step, target)]
            if isinstance(result, str):
                node.why.append(f"verification failed: {result}")
            else:
                node.verification = result


def _result(future: PrefectFuture[_T]) -> _T | str:
    """The task's result, or its failure as one line."""
    future.wait()
    if future.state.is_completed():
        return future.result()
    try:
        future.result()
    except Exception as e:  # the task's own failure, reported, not handled
        return f"{type(e).__name__}: {e}"
    return f"ended {future.state.type.value}"
