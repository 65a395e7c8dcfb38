"""``qops chip drift|offsets|reset``: inject drift into the simulated chip, for every process.

The offsets are stored under the data directory (``qops.chip.offsets``); every calibration,
check and maintenance run that builds the chip afterwards adds them to its hidden values.
"""

from __future__ import annotations

from typing import Annotated

import typer

from qops.chip.offsets import OffsetStore, offsets_path
from qops.config import QopsSettings
from qops.provenance.config import ProvenanceSettings

app = typer.Typer(help="The simulated chip: inject drift (fault injection).", no_args_is_help=True)

ChipOption = Annotated[str | None, typer.Option("--chip", help="Chip id (default: QOPS_CHIP_ID).")]


def _store() -> OffsetStore:
    return OffsetStore(QopsSettings().data_dir)


def _show(chip_id: str, offsets: dict[str, dict[str, float]]) -> None:
    if not offsets:
        typer.echo(f"chip {chip_id}: no offsets")
        return
    for qid, changes in sorted(offsets.items()):
        listed = ", ".join(f"{name} {value:+g}" for name, value in sorted(changes.items()))
        typer.echo(f"chip {chip_id} {qid}: {listed}")


@app.command()
def drift(
    qubit: Annotated[str, typer.Option("--qubit", help="The qubit, e.g. Q2.")],
    chip: ChipOption = None,
    frequency: Annotated[
        float | None, typer.Option(help="Hz added to the qubit frequency.")
    ] = None,
    readout_frequency: Annotated[
        float | None, typer.Option(help="Hz added to the readout resonator frequency.")
    ] = None,
    pi_amplitude: Annotated[float | None, typer.Option(help="V added to the π amplitude.")] = None,
    t1: Annotated[float | None, typer.Option(help="s added to T1 (negative: shorter).")] = None,
    t2_echo: Annotated[float | None, typer.Option(help="s added to T2 echo.")] = None,
    readout_fidelity: Annotated[
        float | None, typer.Option(help="Added to the readout fidelity.")
    ] = None,
) -> None:
    """Shift hidden values of QUBIT for every process (offsets accumulate)."""
    chip_id = chip or ProvenanceSettings().chip_id
    changes = {
        name: value
        for name, value in (
            ("qubit_frequency", frequency),
            ("readout_frequency", readout_frequency),
            ("pi_amplitude", pi_amplitude),
            ("t1", t1),
            ("t2_echo", t2_echo),
            ("readout_fidelity", readout_fidelity),
        )
        if value is not None
    }
    if not changes:
        raise typer.BadParameter("name at least one value to shift, e.g. --frequency 2e6")
    offsets = _store().add(chip_id, qubit.strip().upper(), changes)
    _show(chip_id, offsets)
    typer.echo(f"stored in {offsets_path(QopsSettings().data_dir, chip_id)}")


@app.command()
def offsets(chip: ChipOption = None) -> None:
    """Show the stored offsets of a chip."""
    chip_id = chip or ProvenanceSettings().chip_id
    _show(chip_id, _store().load(chip_id))


@app.command()
def reset(
    chip: ChipOption = None,
    qubit: Annotated[
        str | None, typer.Option("--qubit", help="Only this qubit (default: all).")
    ] = None,
) -> None:
    """Remove stored offsets: the chip drifts only as its seed says again."""
    chip_id = chip or ProvenanceSettings().chip_id
    _show(chip_id, _store().clear(chip_id, qubit.strip().upper() if qubit else None))
