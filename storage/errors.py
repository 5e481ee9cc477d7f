"""Storage-level errors (the root lives in protocol.errors)."""

from __future__ import annotations

from protocol import SatchelError


class StorageError(SatchelError):
    code = "storage.error"


class DatabaseBusy(StorageError):
    code = "storage.busy"
    default_hint = "another satchel command is writing; try again in a moment"


class BlobMissing(StorageError):
    code = "storage.blob_missing"
    default_hint = "the document's content is gone from the blob store; restore the home from backup"


class BlobCorrupt(StorageError):
    code = "storage.blob_corrupt"
    default_hint = "the stored bytes no longer match their hash; restore the home from backup"


class AuditChainBroken(StorageError):
    code = "audit.chain_broken"
    default_hint = "the audit log was edited or entries were deleted; investigate and restore from backup"
