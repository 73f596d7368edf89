"""What a killed process leaves behind, found and removed by the next run.

``kill -9`` runs no ``finally`` and no ``atexit``: a staging folder of ``repayplan import``
or a temporary Prefect server of ``repayplan replan`` would outlive it. The one mechanism
for both: whoever creates such a thing records its *owner* — process id and the process's
start time (so a recycled pid is not mistaken for the owner) — and the next run removes
every thing whose owner is gone (:func:`sweep_folders`, :func:`sweep_servers`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from contextlib import suppress
from pathlib import Path

#: File in an owned folder naming its owner.
OWNER_FILE = "owner.json"


def process_start(pid: int) -> str | None:
    """An identity of process ``pid``'s start (clock ticks since boot on Linux; elsewhere
    the empty string while it runs), or None when no such process runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        stat = ""
    if stat:
        fields = stat.rsplit(")", 1)[-1].split()
        if fields and fields[0] == "Z":  # a zombie is gone as far as we care
            return None
        return fields[19] if len(fields) > 19 else ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return ""


def owner_record(pid: int | None = None) -> dict[str, object]:
    """``{"pid", "start"}`` of ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "start": process_start(pid), "time": time.time()}


def alive(record: dict[str, object]) -> bool:
    """Whether the process a record names is still the one that wrote it."""
    try:
        pid = int(record["pid"])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return False
    start = process_start(pid)
    return start is not None and (not record.get("start") or start == record.get("start"))


def claim_folder(folder: Path) -> None:
    """Mark ``folder`` as owned by this process."""
    path = folder / OWNER_FILE
    path.write_text(json.dumps(owner_record()))


def folder_owned_by_live_process(folder: Path) -> bool:
    """Whether ``folder``'s owner (see :func:`claim_folder`) still runs."""
    try:
        record = json.loads((folder / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and alive(record)


def sweep_folders(parent: Path, pattern: str, *, grace_seconds: float = 60.0) -> int:
    """Remove the folders in ``parent`` matching ``pattern`` whose owner is gone. A folder
    without an owner file is removed only when older than ``grace_seconds`` (its creator
    may be about to write it). Returns how many were removed."""
    removed = 0
    for folder in parent.glob(pattern):
        if not folder.is_dir() or folder_owned_by_live_process(folder):
            continue
        if not (folder / OWNER_FILE).exists():
            with suppress(OSError):
                if time.time() - folder.stat().st_mtime < grace_seconds:
                    continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += not folder.exists()
    return removed


def servers_dir(prefect_home: Path) -> Path:
    """Where temporary Prefect servers are recorded: ``<PREFECT_HOME>/repayplan-servers``."""
    return prefect_home / "repayplan-servers"


def record_server(prefect_home: Path, server_pid: int) -> Path:
    """Record a temporary server started by this process; returns the record's path."""
    folder = servers_dir(prefect_home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{server_pid}.json"
    path.write_text(json.dumps({"owner": owner_record(), "server": owner_record(server_pid)}))
    return path


def sweep_servers(prefect_home: Path) -> int:
    """Stop the temporary servers whose owner is gone (SIGTERM, then SIGKILL after 5 s) and
    forget those no longer running. Returns how many were stopped."""
    folder = servers_dir(prefect_home)
    if not folder.is_dir():
        return 0
    stopped = 0
    for path in folder.glob("*.json"):
        try:
            record = json.loads(path.read_text())
            owner, server = record["owner"], record["server"]
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if alive(owner):
            continue
        if alive(server):
            stopped += _stop(int(server["pid"]), server)
        path.unlink(missing_ok=True)
    return stopped


def _stop(pid: int, record: dict[str, object]) -> int:
    with suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(record):
        time.sleep(0.1)
    if alive(record):
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return 1
