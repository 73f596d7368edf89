"""One demo portfolio per test session, copied (with its PII key) for each test that writes."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_demo(master: Path, folder: Path) -> Path:
    """A copy of the demo database ``master`` (and its ``.pii-key``) in ``folder``."""
    target = folder / master.name
    shutil.copy(master, target)
    key = Path(str(master) + ".pii-key")
    if key.exists():
        shutil.copy(key, Path(str(target) + ".pii-key"))
    return target
