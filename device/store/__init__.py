"""The encrypted template store (SQLite + AES-256-GCM), its keys, audit log and lockout counters.

Typical use::

    from device.store import TemplateStore
    with TemplateStore.open(state_dir, lockout_config=config.lockout) as store:
        store.enroll("alice", "right-index", "fingerprint", model_id, embeddings)
        gallery = store.gallery("fingerprint", model_id)

See ``docs/store.md`` for the file formats, the crash-safety design and the admin commands.
"""

from device.store.audit import AuditRecord, score_bucket
from device.store.check import CheckReport
from device.store.keys import init_key, load_key
from device.store.templatestore import TemplateStore
from device.store.views import EnrolmentInfo, Gallery, UserInfo

__all__ = [
    "AuditRecord",
    "CheckReport",
    "EnrolmentInfo",
    "Gallery",
    "TemplateStore",
    "UserInfo",
    "init_key",
    "load_key",
    "score_bucket",
]
