"""The git-ignored state directory (.lab/): doit's database, recorded identities,
port-forward pids, the run lock. Deleting it is always safe: every step re-checks
reality before trusting anything recorded here.
"""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from tasks.core.errors import LabError

ROOT = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    path = Path(os.environ.get("LAB_STATE_DIR") or ROOT / ".lab")
    path.mkdir(parents=True, exist_ok=True)
    return path


def path(name: str) -> Path:
    return state_dir() / name


def read_json(name: str) -> dict:
    try:
        return json.loads(path(name).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def write_json(name: str, data: dict) -> None:
    target = path(name)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, target)  # atomic: a kill never leaves half a file


def forget(*names: str) -> None:
    for name in names:
        path(name).unlink(missing_ok=True)


_lock_fd = None


def try_lock(name: str, note: str) -> tuple[int | None, str]:
    """An exclusive flock on .lab/NAME, noted with NOTE (pid and what holds it): (fd, "") while this
    process holds it (closing the fd or exiting releases it), or (None, the holder's note)."""
    fd = os.open(path(name), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        return None, holder
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}{': ' + note if note else ''}".encode(), 0)
    return fd, ""


def take_run_lock(command: str) -> None:
    """One mutating run per checkout; held until the process exits."""
    global _lock_fd
    if _lock_fd is not None:
        return
    fd, holder = try_lock("run.lock", command)
    if fd is None:
        raise LabError(f"another lab run is in progress in this checkout ({holder})",
                       "two runs at once would race on the cluster and the task database",
                       "wait for it to finish, then run the command again")
    _lock_fd = fd


def check_doit_db(name: str) -> None:
    """A run killed while doit wrote its JSON database leaves it unreadable; move it aside."""
    db = path(name)
    if not db.exists() or db.stat().st_size == 0:
        return
    try:
        json.loads(db.read_text())
    except ValueError:
        db.replace(db.with_suffix(".corrupt"))
        print(f"  ! {db} was unreadable (a run was killed while writing it); "
              f"moved aside, every step will re-check reality", flush=True)


def git_revision() -> str:
    """HEAD's commit, with `-dirty` for uncommitted edits; 'unknown' outside git. Read-only."""
    import subprocess
    try:
        head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10)
        sha = head.stdout.strip() if head.returncode == 0 else ""
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


def source_url() -> str:
    """Where this checkout comes from (git remote), else its own path as a URL. Read-only."""
    import subprocess
    try:
        url = subprocess.run(["git", "config", "--get", "remote.origin.url"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        url = ""
    return url or ROOT.as_uri()
