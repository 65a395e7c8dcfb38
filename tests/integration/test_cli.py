from tests.cli import run_qops


def test_version_lists_qops_and_its_systems() -> None:
    result = run_qops("version")
    assert result.returncode == 0
    assert result.stdout.startswith("qops ")
    assert "prefect 3.8." in result.stdout
    assert "qcodes 0.58." in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = run_qops("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
