"""Running the installed ``qops`` command as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
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
