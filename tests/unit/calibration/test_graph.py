from qops.calibration.graph import (
    CALIBRATION_STEPS,
    PARAMETER_UNITS,
    Scope,
    StepName,
    producers,
    required_inputs,
)
from qops.calibration.steps import STEP_FUNCTIONS


def test_calibration_steps_every_step_has_a_function_and_a_spec() -> None:
    assert set(CALIBRATION_STEPS) == set(StepName) == set(STEP_FUNCTIONS)


def test_calibration_steps_inputs_produced_by_an_earlier_after_step() -> None:
    order = list(CALIBRATION_STEPS)
    for step, spec in CALIBRATION_STEPS.items():
        for before in spec.after:
            assert order.index(before) < order.index(step), (step, before)
        # Each input is produced by a step this one (transitively) runs after.
        upstream: set[StepName] = set()
        frontier = list(spec.after)
        while frontier:
            current = frontier.pop()
            upstream.add(current)
            frontier.extend(CALIBRATION_STEPS[current].after)
        for name in spec.inputs:
            assert upstream & set(producers(name)), (step, name)


def test_parameter_units_cover_every_input_and_output() -> None:
    names = {n for spec in CALIBRATION_STEPS.values() for n in (*spec.inputs, *spec.outputs)}
    assert names == set(PARAMETER_UNITS)
    assert PARAMETER_UNITS["qubit_frequency"] == "Hz"
    assert PARAMETER_UNITS["t2_echo"] == "s"
    assert PARAMETER_UNITS["cz_fidelity"] == ""


def test_ramsey_refines_frequency_produced_by_two_steps() -> None:
    assert producers("qubit_frequency") == (StepName.CHECK_FREQUENCY, StepName.CHECK_RAMSEY)


def test_required_inputs_qubit_step_plain_names_pair_step_keyed_per_qubit() -> None:
    assert required_inputs(StepName.CHECK_T1, ("Q0",)) == ("qubit_frequency", "pi_amplitude")
    assert CALIBRATION_STEPS[StepName.CHECK_CZ].scope is Scope.PAIR
    assert required_inputs(StepName.CHECK_CZ, ("Q0", "Q1")) == (
        "qubit_frequency:Q0",
        "pi_amplitude:Q0",
        "qubit_frequency:Q1",
        "pi_amplitude:Q1",
    )
