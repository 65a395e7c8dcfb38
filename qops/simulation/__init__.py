"""Running cQASM circuits on the simulated chip, with noise from its calibration.

- :mod:`qops.simulation.cqasm`: reading a cQASM 3.0 circuit (OpenSquirrel's parser) into a
  program the simulator runs.
- :mod:`qops.simulation.noise`: the noise of the chip, built from calibration values (T1, T2,
  gate and readout fidelities).
- :mod:`qops.simulation.simulator`: the density-matrix simulation of a program with that
  noise (Qiskit Aer), giving counts and per-shot bitstrings.

Nothing here knows the wire protocol or where the calibration values come from; the 2300
backend (:mod:`qops.backend.jobs`) feeds it.
"""
