"""Schema versions 2 to 8 read from the untouched file as QCoDeS reads an upgraded copy.

The reference is QCoDeS 0.58 itself on a second copy that its ``connect`` upgraded to
version 9; qops reads the first copy read-only and must leave its folder as it was.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from qcodes.dataset.data_set import DataSet

from qops.qcodes.dataset_groups import GROUPS_LAYOUT, run_dataset, run_to_groups
from qops.qcodes.errors import RunReadError, UnsupportedSchemaVersionError
from qops.qcodes.reader import SUPPORTED_SCHEMA_VERSIONS, QcodesReader
from qops.qcodes.to_xarray import RunView, run_to_xarray
from tests.unit.qcodes.schema_fixtures import (
    EMPTY,
    WITH_RUNS,
    copy_fixture,
    listing,
    needs_fixtures,
    qcodes_runs,
    sha256,
)
from tests.unit.qcodes.test_reader import assert_equals_qcodes, assert_same_attrs

pytestmark = needs_fixtures


def _ids(cases: list[tuple[int, str]]) -> list[str]:
    return [name.removesuffix(".db") for _, name in cases]


def _spec_fields(specs: dict[str, object]) -> dict[str, tuple[object, ...]]:
    return {
        name: (spec.type, spec.label, spec.unit, spec.depends_on, spec.inferred_from)  # type: ignore[attr-defined]
        for name, spec in specs.items()
    }


def _assert_same_data(
    mine: dict[str, dict[str, np.ndarray]], expected: dict[str, dict[str, np.ndarray]]
) -> None:
    assert mine.keys() == expected.keys()
    for top, arrays in expected.items():
        assert mine[top].keys() == arrays.keys(), top
        for name, array in arrays.items():
            assert mine[top][name].shape == array.shape, (top, name)
            assert np.allclose(mine[top][name], array, rtol=1e-14, atol=0, equal_nan=True)


def assert_groups_equal_qcodes_dict(
    root_attrs: dict[str, object], groups: dict[str, xr.Dataset], expected: dict[str, xr.Dataset]
) -> None:
    """One group per dataset of QCoDeS's ``to_xarray_dataset_dict()``, each equal to it."""
    assert groups.keys() == expected.keys()
    for name, theirs in expected.items():
        assert_equals_qcodes(groups[name], theirs)
    first = next(iter(expected.values()))
    assert_same_attrs(root_attrs, {**first.attrs, "qops_layout": GROUPS_LAYOUT})


@pytest.mark.parametrize(("version", "fixture"), WITH_RUNS, ids=_ids(WITH_RUNS))
def test_reader_old_schema_version_reads_like_qcodes_upgraded_copy(
    tmp_path: Path, version: int, fixture: str
) -> None:
    untouched = copy_fixture(fixture, tmp_path / "lab")
    reference: dict[int, DataSet] = qcodes_runs(copy_fixture(fixture, tmp_path / "upgraded"))
    before = (sha256(untouched), listing(untouched.parent))

    with QcodesReader(untouched) as reader:
        assert reader.schema_version == version
        summaries = reader.runs_after(0)
        assert [s.run_id for s in summaries] == sorted(reference)
        for summary in summaries:
            expected = reference[summary.run_id]
            info = reader.run_info(summary.run_id)
            assert summary.guid == info.guid == expected.guid
            assert summary.is_completed == info.is_completed == expected.completed
            assert info.name == expected.name
            assert info.exp_name == expected.exp_name
            assert info.sample_name == expected.sample_name
            assert info.run_timestamp_raw == expected.run_timestamp_raw
            assert info.completed_timestamp_raw == expected.completed_timestamp_raw
            assert info.captured_run_id == expected.captured_run_id
            assert info.captured_counter == expected.captured_counter
            assert info.snapshot_raw == expected._snapshot_raw
            assert info.describer(str(untouched)) == expected.description
            view = RunView(info, info.describer(str(untouched)), str(untouched))
            assert _spec_fields(view.paramspecs) == _spec_fields(expected.paramspecs)

            data = reader.parameter_data(info)
            _assert_same_data(data, expected.get_parameter_data())
            mine = run_dataset(info, data, str(untouched))
            try:
                theirs = expected.to_xarray_dataset()
            except xr.MergeError:
                # QCoDeS cannot merge some of these runs into one dataset (an inferred
                # parameter shared by two trees) but reads them one dataset per dependent.
                assert isinstance(mine, xr.DataTree)
                assert_groups_equal_qcodes_dict(
                    dict(mine.attrs),
                    {n: c.to_dataset() for n, c in mine.children.items()},
                    expected.to_xarray_dataset_dict(),
                )
            else:
                assert isinstance(mine, xr.Dataset)
                assert_equals_qcodes(mine, theirs)

    assert (sha256(untouched), listing(untouched.parent)) == before


@pytest.mark.parametrize(("version", "fixture"), EMPTY[2:], ids=_ids(EMPTY[2:]))
def test_reader_old_schema_version_without_runs_opens_and_lists_none(
    tmp_path: Path, version: int, fixture: str
) -> None:
    untouched = copy_fixture(fixture, tmp_path / "lab")
    before = (sha256(untouched), listing(untouched.parent))
    with QcodesReader(untouched) as reader:
        assert reader.schema_version == version
        assert reader.runs_after(0) == []
        assert reader.metadata_columns() == []
        assert len(reader.metadata_fingerprint()) == 40
    assert (sha256(untouched), listing(untouched.parent)) == before


@pytest.mark.parametrize(("version", "fixture"), EMPTY[:2], ids=_ids(EMPTY[:2]))
def test_reader_schema_version_0_or_1_names_found_and_supported_versions(
    tmp_path: Path, version: int, fixture: str
) -> None:
    untouched = copy_fixture(fixture, tmp_path / "lab")
    before = (sha256(untouched), listing(untouched.parent))
    with pytest.raises(UnsupportedSchemaVersionError) as raised:
        QcodesReader(untouched).open()
    assert raised.value.found == version
    assert raised.value.supported == SUPPORTED_SCHEMA_VERSIONS == tuple(range(2, 10))
    assert f"schema version {version} is not supported (supported: 2, 3, 4" in str(raised.value)
    assert (sha256(untouched), listing(untouched.parent)) == before


def test_reader_version_4_with_newer_description_layout_reads_its_parameters(
    tmp_path: Path,
) -> None:
    """``version4a``: QCoDeS's own upgrade fails on it; qops reads the stored description."""
    untouched = copy_fixture("version4a/some_runs.db", tmp_path / "lab")
    before = (sha256(untouched), listing(untouched.parent))
    with QcodesReader(untouched) as reader:
        assert reader.schema_version == 4
        summaries = reader.runs_after(0)
        assert len(summaries) == 10
        info = reader.run_info(summaries[0].run_id)
        interdeps = info.describer(str(untouched)).interdeps
        assert {p.name for p in interdeps.dependencies} == {"p4"}
        assert {p.name for p in interdeps.dependencies[interdeps["p4"]]} == {"p2", "p3"}
        assert {p.label for p in interdeps.paramspecs} == {f"Parameter {i}" for i in range(5)}
        data = reader.parameter_data(info)
        dataset = run_to_xarray(info, data, str(untouched))
        assert set(dataset.data_vars) == {"p4", "p0", "p1"}
        stored = reader.conn.execute(
            f'SELECT p4 FROM "{info.result_table_name}" WHERE p4 IS NOT NULL ORDER BY id'
        ).fetchall()
        assert data["p4"]["p4"].tolist() == [r[0] for r in stored]
    assert (sha256(untouched), listing(untouched.parent)) == before


def test_reader_version_2_layout_without_results_column_names_run_and_parameter(
    tmp_path: Path,
) -> None:
    lab = copy_fixture("version2/some_runs.db", tmp_path / "lab")
    with sqlite3.connect(lab) as writer:  # a damaged file, as a lab might have one
        writer.execute("UPDATE layouts SET parameter = 'gone' WHERE layout_id = 1")
    with QcodesReader(lab) as reader:
        with pytest.raises(RunReadError, match=r"run 1: layouts is unreadable: .*'gone'"):
            reader.run_info(1)
        assert reader.run_info(2).guid  # the other runs still read


def test_reader_version_2_runs_qcodes_cannot_merge_read_as_its_dataset_dict(
    tmp_path: Path,
) -> None:
    """The runs of ``version2/some_runs.db`` are all of the kind QCoDeS cannot merge."""
    untouched = copy_fixture("version2/some_runs.db", tmp_path / "lab")
    reference = qcodes_runs(copy_fixture("version2/some_runs.db", tmp_path / "upgraded"))
    with QcodesReader(untouched) as reader:
        for run_id, expected in reference.items():
            info = reader.run_info(run_id)
            data = reader.parameter_data(info)
            with pytest.raises(xr.MergeError):
                expected.to_xarray_dataset()
            with pytest.raises(RunReadError, match=f"run {run_id}: data layout is unreadable"):
                run_to_xarray(info, data, str(untouched))
            tree = run_dataset(info, data, str(untouched))
            assert isinstance(tree, xr.DataTree)
            assert set(tree.children) == {"p4", "p5"}


def test_reader_run_neither_merged_nor_per_dependent_names_run_file_and_why(
    tmp_path: Path,
) -> None:
    untouched = copy_fixture("version2/some_runs.db", tmp_path / "lab")
    with QcodesReader(untouched) as reader:
        info = reader.run_info(3)
        data = reader.parameter_data(info)
        # Damaged data as no reader returns it: a setpoint shorter than its dependent.
        data["p4"]["p2"] = data["p4"]["p2"][:10]
        with pytest.raises(RunReadError) as raised:
            run_dataset(info, data, str(untouched))
    message = str(raised.value)
    assert str(untouched) in message
    assert "run 3: data layout is unreadable" in message
    assert raised.value.run_id == 3


def test_run_to_groups_of_run_without_dependents_is_refused_naming_the_run(
    tmp_path: Path,
) -> None:
    untouched = copy_fixture("version2/some_runs.db", tmp_path / "lab")
    with QcodesReader(untouched) as reader:
        info = reader.run_info(2)
        with pytest.raises(RunReadError, match="run 2: data layout is unreadable: no dependent"):
            run_to_groups(info, {}, str(untouched))
