"""Running the installed ``qops`` command as a user would, in a subprocess."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

QOPS = str(Path(sys.executable).with_name("qops"))


def run_qops(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``qops ARGS`` with ``env`` added to the current environment."""
    return subprocess.run(
        [QOPS, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextlib.contextmanager
def qops_process(*args: str) -> Iterator[subprocess.Popen[str]]:
    """Start ``qops ARGS`` in the background (text pipes, current environment).

    The process is killed on exit if it is still running.
    """
    process = subprocess.Popen(
        [QOPS, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
