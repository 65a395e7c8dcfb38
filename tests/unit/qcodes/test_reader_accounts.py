"""Two OS accounts: the lab writes with QCoDeS, the sync reads; the lab's folder stays as it was.

Both accounts are created by the test (``useradd``, removed afterwards), so it needs root;
each side runs in its own process as its account (``account_child.py``).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.unit.qcodes.qcodes_dbs import sha256

CHILD = Path(__file__).with_name("account_child.py")
ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="creating two OS accounts for the lab and the sync needs root and useradd",
)


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


@pytest.fixture(scope="module")
def accounts() -> Iterator[tuple[Account, Account]]:
    made: list[str] = []
    try:
        for role in ("lab", "sync"):
            name = f"q{role}{uuid.uuid4().hex[:8]}"
            subprocess.run(
                ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                check=True,
                capture_output=True,
            )
            made.append(name)
        lab, sync = (pwd.getpwnam(n) for n in made)
        yield (
            Account(lab.pw_name, lab.pw_uid, lab.pw_gid),
            Account(sync.pw_name, sync.pw_uid, sync.pw_gid),
        )
    finally:
        for proc in _STARTED:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        _STARTED.clear()
        for name in made:
            _userdel(name)


_STARTED: list[subprocess.Popen[str]] = []


def _userdel(name: str) -> None:
    """Remove the account; userdel refuses (8) while a process of it is still exiting."""
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run(["userdel", name], check=False, capture_output=True, text=True)
        if done.returncode == 0 or time.monotonic() > deadline:
            assert done.returncode == 0, f"userdel {name}: {done.stderr}"
            return
        time.sleep(0.1)


def _child(account: Account, role: str, db: Path, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(account.uid), str(account.gid), role, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(home),
    )
    _STARTED.append(proc)
    return proc


class Lab:
    """The lab's QCoDeS measurement process, as the lab account."""

    def __init__(self, account: Account, db: Path, home: Path) -> None:
        self.proc = _child(account, "lab", db, home)

    def send(self, command: str) -> str:
        self.post(command)
        return self.answer(command)

    def post(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def answer(self, command: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@"):
                return line[1:].strip()
        _, err = self.proc.communicate(timeout=30)
        raise AssertionError(f"lab writer failed on {command!r}: {err}")

    def crash(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("crash\n")
        self.proc.stdin.flush()
        assert self.proc.wait(timeout=30) == 3


def sync_read(account: Account, db: Path, home: Path) -> dict[str, Any]:
    """The runs the sync account read (or the error it got)."""
    return sync_read_counting(account, db, home)[0]


def sync_read_counting(account: Account, db: Path, home: Path) -> tuple[dict[str, Any], int]:
    """The runs the sync account read, and how many windows it read through ADBC."""
    proc = _child(account, "sync", db, home)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    answer = next(line for line in out.splitlines() if line.startswith("@"))
    result: dict[str, Any] = json.loads(answer[1:])
    if "runs" not in result:
        return result, 0
    return result["runs"], int(result["arrow_windows"])


def folder_state(folder: Path, db: Path) -> dict[str, Any]:
    """The ``.db``'s sha256 and every entry's name, owner, group, mode, size and mtime.

    The ``-wal`` also by content: the reader never writes it. The ``-shm`` by content too:
    the reader opens it with ``readonly_shm=1`` and never writes a byte of it.
    """
    entries = {}
    for entry in sorted(folder.iterdir()):
        st = entry.stat()
        digest = sha256(entry) if entry.is_file() else None
        entries[entry.name] = (
            st.st_uid,
            st.st_gid,
            stat.filemode(st.st_mode),
            st.st_size,
            st.st_mtime_ns,
            digest,
        )
    return {"db": sha256(db), "entries": entries}


@pytest.fixture
def lab_folder(
    accounts: tuple[Account, Account], request: pytest.FixtureRequest
) -> Iterator[tuple[Path, Path]]:
    """A folder owned by the lab account; the sync may write to it or not (``param``).

    Under a fresh directory of ``/tmp`` (pytest's own base is root's alone).
    """
    lab, _ = accounts
    base = Path(tempfile.mkdtemp(prefix="qops-accounts-"))
    base.chmod(0o755)
    try:
        yield _lab_folder(base, lab, bool(getattr(request, "param", False)))
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _lab_folder(base: Path, lab: Account, writable: bool) -> tuple[Path, Path]:
    home = base / "home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    folder = base / "lab"
    folder.mkdir()
    os.chown(folder, lab.uid, lab.gid)
    folder.chmod(0o777 if writable else 0o755)
    return folder, home


def expected_rows(n: int) -> dict[str, list[float]]:
    return {"x": [float(i) for i in range(n)], "z": [2.0 * i for i in range(n)]}


@pytest.mark.parametrize("lab_folder", [False, True], ids=["folder-ro", "folder-rw"], indirect=True)
def test_reader_other_account_reads_live_writer_folder_unchanged_lab_writes_again(
    accounts: tuple[Account, Account], lab_folder: tuple[Path, Path]
) -> None:
    lab_account, sync_account = accounts
    folder, home = lab_folder
    db = folder / "lab.db"
    lab = Lab(lab_account, db, home)
    assert lab.send("start") == "run 1"
    assert lab.send("add 40") == "ok 40"
    before = folder_state(folder, db)
    assert {"lab.db-wal", "lab.db-shm"} <= set(before["entries"])

    read = sync_read(sync_account, db, home)

    assert folder_state(folder, db) == before
    assert read["1"] == {"completed": False, "data": {"z": expected_rows(40)}}
    # The lab's next writes succeed (the bug: "attempt to write a readonly database").
    assert lab.send("add 10") == "ok 50"
    assert lab.send("finish") == "ok finished"
    before = folder_state(folder, db)
    read = sync_read(sync_account, db, home)
    assert folder_state(folder, db) == before
    assert read["1"] == {"completed": True, "data": {"z": expected_rows(50)}}
    assert lab.send("quit") == "ok closed"
    lab.proc.wait(timeout=30)
    # The lab's last connection still cleans up after itself: no side file is left.
    assert sorted(p.name for p in folder.iterdir()) == ["lab.db"]


@pytest.mark.parametrize("lab_folder", [False, True], ids=["folder-ro", "folder-rw"], indirect=True)
def test_reader_other_account_reads_closed_wal_database_creates_no_files(
    accounts: tuple[Account, Account], lab_folder: tuple[Path, Path]
) -> None:
    lab_account, sync_account = accounts
    folder, home = lab_folder
    db = folder / "lab.db"
    lab = Lab(lab_account, db, home)
    lab.send("start")
    lab.send("add 25")
    lab.send("finish")
    lab.send("quit")
    lab.proc.wait(timeout=30)
    before = folder_state(folder, db)
    assert list(before["entries"]) == ["lab.db"]

    read, arrow_windows = sync_read_counting(sync_account, db, home)

    assert folder_state(folder, db) == before
    assert read == {"1": {"completed": True, "data": {"z": expected_rows(25)}}}
    assert arrow_windows == 1  # ``immutable``: the rows were read through ADBC
    lab = Lab(lab_account, db, home)
    assert lab.send("start") == "run 2"
    assert lab.send("add 5") == "ok 5"
    lab.send("quit")


@pytest.mark.parametrize("lab_folder", [False, True], ids=["folder-ro", "folder-rw"], indirect=True)
def test_reader_other_account_reads_crashed_writer_wal_every_committed_row(
    accounts: tuple[Account, Account], lab_folder: tuple[Path, Path]
) -> None:
    lab_account, sync_account = accounts
    folder, home = lab_folder
    db = folder / "lab.db"
    lab = Lab(lab_account, db, home)
    lab.send("start")
    lab.send("add 30")
    lab.crash()
    before = folder_state(folder, db)
    assert before["entries"]["lab.db-wal"][3] > 0  # the committed rows are only in the -wal

    read = sync_read(sync_account, db, home)

    assert folder_state(folder, db) == before
    assert read == {"1": {"completed": False, "data": {"z": expected_rows(30)}}}
    lab = Lab(lab_account, db, home)
    assert lab.send("start") == "run 2"
    assert lab.send("add 5") == "ok 5"
    lab.send("quit")


@pytest.mark.parametrize("lab_folder", [False], ids=["folder-ro"], indirect=True)
def test_reader_root_account_reads_crashed_writer_leaves_shm_bytes_unchanged(
    accounts: tuple[Account, Account], lab_folder: tuple[Path, Path]
) -> None:
    """Root may write the lab's ``-shm``; the reader still does not (``readonly_shm=1``)."""
    lab_account, _ = accounts
    folder, home = lab_folder
    db = folder / "lab.db"
    lab = Lab(lab_account, db, home)
    lab.send("start")
    lab.send("add 30")
    lab.crash()
    before = folder_state(folder, db)

    read = sync_read(Account("root", 0, 0), db, home)

    assert folder_state(folder, db) == before
    assert read == {"1": {"completed": False, "data": {"z": expected_rows(30)}}}


@pytest.mark.parametrize("lab_folder", [False], ids=["folder-ro"], indirect=True)
def test_reader_file_other_account_may_not_read_says_permission_denied(
    accounts: tuple[Account, Account], lab_folder: tuple[Path, Path]
) -> None:
    lab_account, sync_account = accounts
    folder, home = lab_folder
    db = folder / "lab.db"
    lab = Lab(lab_account, db, home)
    lab.send("start")
    lab.send("add 3")
    lab.send("quit")
    lab.proc.wait(timeout=30)
    db.chmod(0o600)

    read = sync_read(sync_account, db, home)

    assert read["error"] == "DatabaseUnreadableError"
    assert f"cannot be read by the account {sync_account.name}" in read["message"]
    assert "Permission denied" in read["message"]
    assert "not an SQLite database" not in read["message"]


def entries(folder: Path) -> dict[str, tuple[int, int, str]]:
    return {
        p.name: (p.stat().st_uid, p.stat().st_gid, stat.filemode(p.stat().st_mode))
        for p in sorted(folder.iterdir())
    }


@pytest.mark.parametrize("lab_folder", [False, True], ids=["folder-ro", "folder-rw"], indirect=True)
def test_reader_other_account_reads_while_lab_streams_rows_sees_committed_prefix(
    accounts: tuple[Account, Account], lab_folder: tuple[Path, Path]
) -> None:
    """The lab commits rows as fast as QCoDeS goes while the sync reads, repeatedly."""
    lab_account, sync_account = accounts
    folder, home = lab_folder
    db = folder / "lab.db"
    lab = Lab(lab_account, db, home)
    lab.send("start")
    lab.send("add 10")
    before = entries(folder)
    lab.post("stream 40000")
    seen = set()
    for _ in range(3):
        read = sync_read(sync_account, db, home)
        rows = read["1"]["data"]["z"]
        n = len(rows["x"])
        assert rows == expected_rows(n)
        seen.add(n)
        assert entries(folder) == before
    assert lab.answer("stream 40000") == "ok 40010"
    assert lab.send("add 1") == "ok 40011"
    assert len(seen) > 1
    assert entries(folder) == before
    lab.send("quit")
