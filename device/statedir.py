"""No side effects on failure: a command that fails leaves the state directory as it was.

Why: a failed ``store import`` (wrong passphrase) into an empty folder used to leave a fresh ``store.db`` and
``store.key`` behind, and the first failed ``enroll`` created a key; the next command then found "a store" that
holds nothing and a key nobody backed up. ``unchanged_on_failure`` notes which entries of the state directory exist
before the command and, when the command raises, removes what the command created there (and the directory itself
if it created that too). Existing files are never touched: changes *inside* an existing store are the store's own
business (its writes are transactions, so a failed import or enrolment changes no record).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("biolock.state")


@contextlib.contextmanager
def unchanged_on_failure(state_dir: Path) -> Iterator[None]:
    """Remove whatever the block created in ``state_dir`` when it raises (SystemExit with code 0 is success)."""
    state_dir = Path(state_dir)
    existed = state_dir.exists()
    before = {p.name for p in state_dir.iterdir()} if existed else set()
    try:
        yield
    except SystemExit as exc:
        if exc.code not in (0, None):
            _undo(state_dir, existed, before)
        raise
    except BaseException:
        _undo(state_dir, existed, before)
        raise


def _undo(state_dir: Path, existed: bool, before: set[str]) -> None:
    if not state_dir.exists():
        return
    if not existed:
        shutil.rmtree(state_dir, ignore_errors=True)
        log.debug("removed %s: the failed command created it", state_dir)
        return
    for path in state_dir.iterdir():
        # a new "store.db-wal" of an existing store.db holds committed records (the daemon may have it open)
        # store.gen belongs to an existing store.db: removing it would make the next open refuse the store
        # as possibly rolled back (issue 17 item 4)
        # (and so does its lock file: removing it while another process holds the lock would let two writers in)
        kept = path.name in ("store.gen", ".store.gen.lock") and "store.db" in before
        if path.name not in before and not kept and not any(path.name.startswith(f"{name}-") for name in before):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            log.debug("removed %s: the failed command created it", path)
