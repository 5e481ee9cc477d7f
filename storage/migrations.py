"""Named schema migrations. Never edit one that has been released: add a new one."""

from __future__ import annotations

import json
import re

import sqlite_utils

MIGRATIONS = sqlite_utils.Migrations("satchel")

# Names under which released versions applied a migration that was renamed later, the migration unchanged: a
# home upgraded from such a version has it recorded under the old name, so it would be taken for a newer
# version's (storage.schema_newer) and run again. storage.database records it under its name of now first.
FORMER_NAMES = {
    "0021_directory_cache_fields": "0020_directory_cache_fields",  # until c1cb576
    "0024_request_answers_sent": "0021_request_answers_sent",  # until d4c4f2b
    "0021_students_source_id": "0022_students_source_id",  # until d4c4f2b
    "0024_request_release_failed_on": "0023_request_release_failed_on",  # e6aa2b1 to 7562820
}


def _run(db: sqlite_utils.Database, script: str) -> None:
    # executescript() would COMMIT the migration's transaction first, so run statement by statement.
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@MIGRATIONS(name="0001_initial")
def _initial(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE node_keys (
            key_id TEXT PRIMARY KEY,
            use TEXT NOT NULL CHECK (use IN ('identity', 'encryption')),
            algorithm TEXT NOT NULL,
            public_key BLOB NOT NULL,
            key_file TEXT NOT NULL,
            not_before TEXT NOT NULL,
            not_after TEXT,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired', 'revoked')),
            created_at TEXT NOT NULL
        );
        CREATE TABLE users (
            username TEXT PRIMARY KEY,
            email TEXT NOT NULL,
            full_name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'viewer')),
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
            created_at TEXT NOT NULL,
            disabled_at TEXT
        );
        CREATE UNIQUE INDEX users_email ON users (email COLLATE NOCASE);
        CREATE TABLE audit_log (
            seq INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT NOT NULL,
            details TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            entry_hash TEXT NOT NULL
        );
        CREATE TABLE students (
            sis_id TEXT PRIMARY KEY,
            source_id TEXT NOT NULL,
            given_name TEXT NOT NULL,
            middle_name TEXT NOT NULL DEFAULT '',
            family_name TEXT NOT NULL,
            preferred_name TEXT NOT NULL DEFAULT '',
            birth_date TEXT,
            sex TEXT,
            grade TEXT,
            state_id TEXT NOT NULL DEFAULT '',
            username TEXT NOT NULL DEFAULT '',
            email TEXT NOT NULL DEFAULT '',
            school_id TEXT NOT NULL DEFAULT '',
            school_name TEXT NOT NULL DEFAULT '',
            enrollment_start TEXT,
            enrollment_status TEXT NOT NULL DEFAULT 'active',
            origin TEXT NOT NULL DEFAULT 'roster',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX students_state_id ON students (state_id) WHERE state_id != '';
        CREATE INDEX students_family_birth ON students (family_name COLLATE NOCASE, birth_date);
        CREATE INDEX students_school_grade ON students (school_id, grade);
        CREATE TABLE documents (
            doc_id TEXT PRIMARY KEY,
            student_sis_id TEXT NOT NULL REFERENCES students (sis_id),
            doc_type TEXT NOT NULL,
            title TEXT NOT NULL,
            filename TEXT NOT NULL,
            media_type TEXT NOT NULL,
            length INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleted', 'purged')),
            origin TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        );
        CREATE INDEX documents_student ON documents (student_sis_id);
        CREATE INDEX documents_sha256 ON documents (sha256);
        CREATE TABLE cases (
            case_id TEXT PRIMARY KEY,
            case_number TEXT NOT NULL UNIQUE,
            student_sis_id TEXT NOT NULL REFERENCES students (sis_id),
            person_of_concern TEXT NOT NULL,
            building TEXT NOT NULL DEFAULT '',
            team TEXT NOT NULL DEFAULT '',
            team_leader TEXT NOT NULL DEFAULT '',
            case_manager TEXT NOT NULL DEFAULT '',
            notes TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'open',
            origin TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL
        );
        CREATE INDEX cases_student ON cases (student_sis_id);
        CREATE TABLE assessment_results (
            result_id TEXT PRIMARY KEY,
            student_sis_id TEXT NOT NULL REFERENCES students (sis_id),
            assessment TEXT NOT NULL,
            subject TEXT NOT NULL,
            date TEXT NOT NULL,
            score TEXT NOT NULL DEFAULT '',
            scale_score TEXT NOT NULL DEFAULT '',
            percentile TEXT NOT NULL DEFAULT '',
            benchmark_category TEXT NOT NULL DEFAULT '',
            origin TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE INDEX assessment_results_student ON assessment_results (student_sis_id);
        """,
    )


@MIGRATIONS(name="0002_federation")
def _federation(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        ALTER TABLE node_keys ADD COLUMN endorsement TEXT;
        CREATE TABLE peers (
            domain TEXT PRIMARY KEY,
            base_url TEXT NOT NULL,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            state TEXT NOT NULL,
            city TEXT NOT NULL,
            zip TEXT NOT NULL,
            nces_id TEXT NOT NULL,
            transfers_enabled INTEGER NOT NULL,
            coordinator TEXT,
            descriptor BLOB NOT NULL,
            trust TEXT NOT NULL CHECK (trust IN ('pinned', 'directory', 'web')),
            trusted_via TEXT NOT NULL DEFAULT '',
            pinned_by TEXT,
            fetched_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE peer_keys (
            key_id TEXT NOT NULL,
            domain TEXT NOT NULL REFERENCES peers (domain),
            use TEXT NOT NULL,
            algorithm TEXT NOT NULL,
            public_key BLOB NOT NULL,
            not_before TEXT NOT NULL,
            not_after TEXT,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
            first_seen TEXT NOT NULL,
            PRIMARY KEY (key_id, domain)
        );
        CREATE INDEX peer_keys_domain ON peer_keys (domain);
        CREATE TABLE seen_nonces (
            key_id TEXT NOT NULL,
            nonce TEXT NOT NULL,
            keep_until INTEGER NOT NULL,
            PRIMARY KEY (key_id, nonce)
        );
        CREATE INDEX seen_nonces_keep_until ON seen_nonces (keep_until);
        CREATE TABLE trusted_directories (
            base_url TEXT PRIMARY KEY,
            domain TEXT NOT NULL,
            key_id TEXT NOT NULL,
            public_key BLOB NOT NULL,
            added_by TEXT NOT NULL,
            added_at TEXT NOT NULL,
            last_ok_at TEXT
        );
        CREATE TABLE directory_memberships (
            base_url TEXT PRIMARY KEY,
            domain TEXT NOT NULL,
            status TEXT NOT NULL,
            joined_at TEXT NOT NULL,
            pushed_descriptor_sha256 TEXT,
            pushed_at TEXT
        );
        CREATE TABLE directory_cache (
            directory_domain TEXT NOT NULL,
            domain TEXT NOT NULL,
            entry BLOB NOT NULL,
            fetched_at TEXT NOT NULL,
            PRIMARY KEY (directory_domain, domain)
        );
        CREATE TABLE directory_entries (
            domain TEXT PRIMARY KEY,
            status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
            origin TEXT NOT NULL,
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            city TEXT NOT NULL,
            zip TEXT NOT NULL,
            nces_id TEXT NOT NULL,
            descriptor BLOB NOT NULL,
            entry BLOB,
            joined_at TEXT NOT NULL,
            decided_at TEXT,
            decided_by TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX directory_entries_state ON directory_entries (state, status);
        CREATE TABLE directory_mirrors (
            base_url TEXT PRIMARY KEY,
            domain TEXT NOT NULL,
            public_key BLOB NOT NULL,
            added_by TEXT NOT NULL,
            added_at TEXT NOT NULL,
            last_sync_at TEXT
        );
        CREATE TABLE outbox (
            job_id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            peer TEXT NOT NULL,
            url TEXT NOT NULL,
            payload BLOB NOT NULL,
            content_type TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed', 'cancelled')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            expires_at TEXT,
            last_error TEXT,
            created_at TEXT NOT NULL,
            done_at TEXT
        );
        CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
        """,
    )


@MIGRATIONS(name="0003_match_keys")
def _match_keys(db: sqlite_utils.Database) -> None:
    # The blocking index for matching incoming students (storage/match_index.py). Its rows are derived
    # from the students table, so the backfill uses the current key design; a later change to that design
    # comes with its own migration calling match_index.rebuild.
    _run(
        db,
        """
        CREATE TABLE student_match_keys (
            key TEXT NOT NULL,
            sis_id TEXT NOT NULL,
            PRIMARY KEY (key, sis_id)
        ) WITHOUT ROWID;
        CREATE INDEX student_match_keys_sis_id ON student_match_keys (sis_id);
        """,
    )
    from storage import match_index  # matching's code, loaded only by the migration that needs it

    match_index.rebuild(db)


@MIGRATIONS(name="0004_transfers")
def _transfers(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE transfers (
            transfer_id TEXT PRIMARY KEY,
            side TEXT NOT NULL CHECK (side IN ('sender', 'receiver')),
            state TEXT NOT NULL,
            peer TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'transfer',
            expires_at TEXT,
            envelope_digest BLOB,
            wrong_codes INTEGER NOT NULL DEFAULT 0,
            max_wrong_codes INTEGER NOT NULL DEFAULT 5,
            receipts_issued INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            created_by TEXT,
            note TEXT NOT NULL DEFAULT '',
            owner TEXT,
            students INTEGER NOT NULL DEFAULT 0,
            documents INTEGER NOT NULL DEFAULT 0,
            records INTEGER NOT NULL DEFAULT 0,
            envelope_path TEXT,
            envelope_length INTEGER,
            staging_path TEXT,
            manifest BLOB,
            manifest_signature BLOB,
            request_id TEXT
        );
        CREATE INDEX transfers_side_state ON transfers (side, state);
        CREATE TABLE transfer_codes (
            transfer_id TEXT PRIMARY KEY REFERENCES transfers (transfer_id),
            code TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE transfer_students (
            transfer_id TEXT NOT NULL REFERENCES transfers (transfer_id),
            sis_id TEXT NOT NULL,
            PRIMARY KEY (transfer_id, sis_id)
        );
        CREATE TABLE transfer_events (
            transfer_id TEXT NOT NULL REFERENCES transfers (transfer_id),
            seq INTEGER NOT NULL,
            at TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('sent', 'received', 'local')),
            kind TEXT NOT NULL,
            actor TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '{}',
            receipt BLOB,
            receipt_id TEXT,
            PRIMARY KEY (transfer_id, seq)
        );
        CREATE UNIQUE INDEX transfer_events_receipt ON transfer_events (transfer_id, receipt_id)
            WHERE receipt_id IS NOT NULL;
        CREATE TABLE disclosures (
            disclosure_id TEXT PRIMARY KEY,
            student_sis_id TEXT NOT NULL,
            transfer_id TEXT NOT NULL,
            to_domain TEXT NOT NULL,
            to_name TEXT NOT NULL,
            records TEXT NOT NULL,
            disclosed_by TEXT NOT NULL,
            at TEXT NOT NULL,
            purpose TEXT NOT NULL
        );
        CREATE INDEX disclosures_student ON disclosures (student_sis_id, at);
        CREATE TABLE notifications (
            notification_id TEXT PRIMARY KEY,
            at TEXT NOT NULL,
            audience TEXT NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            transfer_id TEXT,
            read_at TEXT
        );
        CREATE INDEX notifications_at ON notifications (at);
        """,
    )


@MIGRATIONS(name="0005_imports")
def _imports(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        ALTER TABLE documents ADD COLUMN replaces TEXT;
        ALTER TABLE documents ADD COLUMN superseded_by TEXT;
        CREATE TABLE imports (
            import_id TEXT PRIMARY KEY,
            transfer_id TEXT NOT NULL UNIQUE REFERENCES transfers (transfer_id),
            source_domain TEXT NOT NULL,
            source_name TEXT NOT NULL,
            source_school TEXT NOT NULL,
            school_id TEXT,
            school_name TEXT,
            owner TEXT,
            status TEXT NOT NULL CHECK (status IN ('previewed', 'running', 'completed', 'cancelled')),
            result TEXT,
            reference TEXT,
            students_total INTEGER NOT NULL DEFAULT 0,
            students_imported INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE TABLE import_students (
            import_id TEXT NOT NULL REFERENCES imports (import_id),
            position INTEGER NOT NULL,
            sender_sis_id TEXT NOT NULL,
            match_status TEXT NOT NULL,
            proposed_sis_id TEXT,
            score INTEGER,
            method TEXT NOT NULL,
            candidates TEXT NOT NULL DEFAULT '[]',
            reasons TEXT NOT NULL DEFAULT '[]',
            decision TEXT CHECK (decision IN ('link', 'new', 'later')),
            decided_sis_id TEXT,
            reviewed_by TEXT,
            reviewed_at TEXT,
            result TEXT CHECK (result IN ('imported', 'skipped', 'failed')),
            result_reason TEXT,
            destination_sis_id TEXT,
            created_student INTEGER NOT NULL DEFAULT 0,
            documents INTEGER NOT NULL DEFAULT 0,
            scores INTEGER NOT NULL DEFAULT 0,
            changed INTEGER NOT NULL DEFAULT 0,
            finished_at TEXT,
            PRIMARY KEY (import_id, sender_sis_id)
        );
        CREATE TABLE imported_records (
            source_domain TEXT NOT NULL,
            source_record_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            local_id TEXT NOT NULL,
            import_id TEXT NOT NULL,
            transfer_id TEXT NOT NULL,
            student_sis_id TEXT NOT NULL,
            PRIMARY KEY (source_domain, source_record_id)
        );
        CREATE INDEX imported_records_import ON imported_records (import_id);
        """,
    )


@MIGRATIONS(name="0006_requests_and_codes")
def _requests_and_codes(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE records_requests (
            request_id TEXT PRIMARY KEY,
            side TEXT NOT NULL CHECK (side IN ('requester', 'releaser')),
            state TEXT NOT NULL,
            peer TEXT NOT NULL,
            student_sis_id TEXT,
            signed_request BLOB NOT NULL,
            signed_response BLOB,
            opened_on TEXT NOT NULL,
            transfer_id TEXT,
            overdue_flagged INTEGER NOT NULL DEFAULT 0,
            working_days INTEGER NOT NULL,
            created_by TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX records_requests_state ON records_requests (side, state);
        CREATE TABLE transfer_codes_issued (
            code_id TEXT PRIMARY KEY,
            claim_key BLOB NOT NULL,
            display TEXT NOT NULL,
            scope TEXT NOT NULL CHECK (scope IN ('student', 'grade')),
            student_sis_id TEXT,
            grade TEXT,
            school_id TEXT,
            school_name TEXT,
            bound_destination TEXT,
            state TEXT NOT NULL,
            failed_claims INTEGER NOT NULL DEFAULT 0,
            claimed_by TEXT,
            transfer_id TEXT,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            status_json TEXT NOT NULL
        );
        CREATE TABLE claim_failures (
            peer TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX claim_failures_peer ON claim_failures (peer, at);
        CREATE TABLE code_claims (
            transfer_id TEXT PRIMARY KEY,
            source_domain TEXT NOT NULL,
            code TEXT NOT NULL,
            school TEXT,
            claimed_at TEXT NOT NULL
        );
        """,
    )


@MIGRATIONS(name="0007_outbox_lease")
def _outbox_lease(db: sqlite_utils.Database) -> None:
    _run(db, "ALTER TABLE outbox ADD COLUMN leased_until TEXT")


@MIGRATIONS(name="0008_received_blobs")
def _received_blobs(db: sqlite_utils.Database) -> None:
    # Accepting a transfer opens its documents straight into the blob store; until they are imported the
    # transfer is what keeps those blobs alive, so deleting a blob must ask this table as well as documents.
    _run(
        db,
        """
        CREATE TABLE received_blobs (
            transfer_id TEXT NOT NULL,
            record_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (transfer_id, record_id)
        );
        CREATE INDEX received_blobs_sha256 ON received_blobs (sha256);
        """,
    )


@MIGRATIONS(name="0009_checked_manifests")
def _checked_manifests(db: sqlite_utils.Database) -> None:
    # Parsing a grade's manifest with every check costs a third of its import; storage.manifest_checks
    # remembers which exact bytes (by SHA-256) already passed, so later commands parse them without re-checking.
    _run(
        db, "CREATE TABLE checked_manifests (sha256 TEXT PRIMARY KEY, checked_at TEXT NOT NULL) WITHOUT ROWID"
    )


@MIGRATIONS(name="0010_transfer_manifests")
def _transfer_manifests(db: sqlite_utils.Database) -> None:
    # A grade's manifest is some 3 MB: kept in the transfers row, every state change of the transfer (each
    # UPDATE rewrites the whole row) copied it into the WAL twice over, and every read of the row read it.
    _run(
        db,
        """
        CREATE TABLE transfer_manifests (
            transfer_id TEXT PRIMARY KEY REFERENCES transfers (transfer_id),
            manifest BLOB NOT NULL,
            signature BLOB NOT NULL
        );
        INSERT INTO transfer_manifests (transfer_id, manifest, signature)
            SELECT transfer_id, manifest, manifest_signature FROM transfers
            WHERE manifest IS NOT NULL AND manifest_signature IS NOT NULL;
        ALTER TABLE transfers DROP COLUMN manifest;
        ALTER TABLE transfers DROP COLUMN manifest_signature
        """,
    )


@MIGRATIONS(name="0011_directory_entry_keys")
def _directory_entry_keys(db: sqlite_utils.Database) -> None:
    # Key discovery (GET /satchel/v1/directory/keys/{keyid}) is public: it verified every entry's descriptor
    # to find the one key, some 13,000 signature checks per request in a national directory. The key ids
    # of each entry are kept beside it instead, written with the entry.
    _run(
        db,
        """
        CREATE TABLE directory_entry_keys (
            key_id TEXT NOT NULL,
            domain TEXT NOT NULL,
            PRIMARY KEY (key_id, domain)
        ) WITHOUT ROWID;
        CREATE INDEX directory_entry_keys_domain ON directory_entry_keys (domain);
        """,
    )
    from storage import directory  # descriptor parsing, loaded only by the migration that needs it

    directory.reindex_keys(db)


@MIGRATIONS(name="0012_directory_entries_published")
def _directory_entries_published(db: sqlite_utils.Database) -> None:
    # The mirror feed's cache asks on every request whether the approved entries changed (count and newest
    # update); without this index that read every entry, some 50 MB at 13,000 entries.
    _run(db, "CREATE INDEX directory_entries_status_updated ON directory_entries (status, updated_at)")


@MIGRATIONS(name="0013_request_messages")
def _request_messages(db: sqlite_utils.Database) -> None:
    # The coordinators' thread about a records request (spec/requests.md §2): each message is a signed response
    # of kind "message", kept beside the request's one answer (records_requests.signed_response), never in
    # its place. Keyed by the SHA-256 of the signed document, so a redelivered message is kept once.
    _run(
        db,
        """
        CREATE TABLE request_messages (
            message_key TEXT PRIMARY KEY,
            request_id TEXT NOT NULL REFERENCES records_requests (request_id),
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            signed BLOB NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX request_messages_request ON request_messages (request_id, at);
        """,
    )


@MIGRATIONS(name="0014_request_reminders")
def _request_reminders(db: sqlite_utils.Database) -> None:
    # The local day an overdue request was last told to the coordinators, so the timer reminds them again a
    # working week later while it stays unanswered (spec/requests.md §5). NULL for requests flagged before.
    _run(db, "ALTER TABLE records_requests ADD COLUMN reminded_on TEXT")


@MIGRATIONS(name="0015_import_runs")
def _import_runs(db: sqlite_utils.Database) -> None:
    # Which run of an import may write it: a second `import run` of the same import takes over, and the first
    # stops at its next batch rather than both writing. And "imported with changes" now means a conflict with
    # the student already held (its note kept in result_reason); before, every student who got a record was
    # marked changed, with no note.
    _run(
        db,
        """
        ALTER TABLE imports ADD COLUMN run_token TEXT;
        UPDATE import_students SET changed = 0 WHERE result = 'imported' AND result_reason IS NULL;
        """,
    )


@MIGRATIONS(name="0016_code_endings")
def _code_endings(db: sqlite_utils.Database) -> None:
    # A claimed transfer code now follows its transfer to the end (spec/codes.md §7.3): codes held by a
    # transfer that was already cancelled or locked are revoked, those whose transfer expired or was not
    # delivered are free again (the timer expires those past their 30 days). And a code that can open nothing
    # more keeps no claim key.
    _run(
        db,
        """
        UPDATE transfer_codes_issued SET state = 'revoked', claimed_by = NULL,
            status_json = '{"state": "revoked"}'
        WHERE state = 'claimed' AND transfer_id IN (
            SELECT transfer_id FROM transfers WHERE side = 'sender' AND state IN ('cancelled', 'locked'));
        UPDATE transfer_codes_issued SET state = 'active', claimed_by = NULL, transfer_id = NULL,
            status_json = '{"state": "active"}'
        WHERE state = 'claimed' AND transfer_id IN (
            SELECT transfer_id FROM transfers WHERE side = 'sender' AND state IN ('expired', 'undeliverable'));
        UPDATE transfer_codes_issued SET claim_key = zeroblob(0)
        WHERE state IN ('used', 'revoked', 'expired', 'locked');
        """,
    )


@MIGRATIONS(name="0017_outbox_lease_owner")
def _outbox_lease_owner(db: sqlite_utils.Database) -> None:
    # The process that holds a job's lease: a server starting releases only the leases of processes that are
    # gone, not those of a command still uploading (which renews its lease while it works).
    _run(db, "ALTER TABLE outbox ADD COLUMN leased_by INTEGER")


@MIGRATIONS(name="0018_assessment_moves")
def _assessment_moves(db: sqlite_utils.Database) -> None:
    # Who moved a result to the student it is on (`satchel assessments move`): the nightly assessments import
    # keeps it there rather than on the student its file still names. Results moved before now are found in
    # the audit log, so an upgrade does not let the next import undo them; read once, in order (a later move
    # wins), as the log has no index a per-result look-up could use.
    db.execute("ALTER TABLE assessment_results ADD COLUMN moved_by TEXT")
    # Few results are moved: the import looks for those on the students of its new rows, not at all of theirs.
    db.execute(
        "CREATE INDEX assessment_results_moved ON assessment_results (student_sis_id) WHERE moved_by IS NOT NULL"
    )
    moves = db.execute(
        "SELECT json_extract(details, '$.result_id'), actor FROM audit_log WHERE action = 'assessment.move' "
        "ORDER BY seq"
    )
    db.conn.executemany(
        "UPDATE assessment_results SET moved_by = ? WHERE result_id = ?",
        [(actor, result_id) for result_id, actor in dict(moves.fetchall()).items()],
    )


@MIGRATIONS(name="0019_directory_entries_by_origin")
def _directory_entries_by_origin(db: sqlite_utils.Database) -> None:
    # A directory held one entry per domain, so a mirrored directory's entry and this directory's own request
    # for the same district overwrote each other: a join over a mirrored entry came out approved without the
    # operator, and a pull replaced pending or rejected requests. Each origin now keeps its own entry, and
    # `published` marks the one (at most) that the directory publishes for the domain. Until now every
    # domain had one entry, so the approved ones are those published; the key index already holds their keys.
    _run(
        db,
        """
        CREATE TABLE directory_entries_by_origin (
            domain TEXT NOT NULL,
            origin TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
            published INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1)),
            name TEXT NOT NULL,
            state TEXT NOT NULL,
            city TEXT NOT NULL,
            zip TEXT NOT NULL,
            nces_id TEXT NOT NULL,
            descriptor BLOB NOT NULL,
            entry BLOB,
            joined_at TEXT NOT NULL,
            decided_at TEXT,
            decided_by TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (domain, origin)
        );
        INSERT INTO directory_entries_by_origin (domain, origin, status, published, name, state, city, zip, nces_id,
            descriptor, entry, joined_at, decided_at, decided_by, updated_at)
        SELECT domain, origin, status, status = 'approved', name, state, city, zip, nces_id, descriptor, entry,
            joined_at, decided_at, decided_by, updated_at FROM directory_entries;
        DROP TABLE directory_entries;
        ALTER TABLE directory_entries_by_origin RENAME TO directory_entries;
        CREATE UNIQUE INDEX directory_entries_published_domain ON directory_entries (domain) WHERE published = 1;
        CREATE INDEX directory_entries_state ON directory_entries (state, published);
        CREATE INDEX directory_entries_published_updated ON directory_entries (published, updated_at);
        DELETE FROM directory_entry_keys
        WHERE domain NOT IN (SELECT domain FROM directory_entries WHERE published = 1)
        """,
    )


@MIGRATIONS(name="0020_directory_cache_fields")
def _directory_cache_fields(db: sqlite_utils.Database) -> None:
    # A district's cache of search answers was only ever added to: a district a directory dropped was still
    # shown from it whenever the directory did not answer. Kept with its searchable fields, a cached entry
    # that matches a search the directory answered in full without it is dropped. Entries cached before have
    # none (NULL matches nothing) and go when no answer has held them for a while.
    _run(
        db,
        """
        ALTER TABLE directory_cache ADD COLUMN state TEXT;
        ALTER TABLE directory_cache ADD COLUMN name TEXT;
        ALTER TABLE directory_cache ADD COLUMN city TEXT;
        ALTER TABLE directory_cache ADD COLUMN zip TEXT;
        ALTER TABLE directory_cache ADD COLUMN nces_id TEXT
        """,
    )


@MIGRATIONS(name="0021_request_answers_sent")
def _request_answers_sent(db: sqlite_utils.Database) -> None:
    # How many answers this node has signed about a request: a release whose transfer ends unopened is
    # answered again (spec/requests.md §2), each answer in its own outbox job, numbered, and delivered after
    # the one before it. A request answered before now has one answer exactly when that answer's job exists.
    db.execute("ALTER TABLE records_requests ADD COLUMN answers_sent INTEGER NOT NULL DEFAULT 0")
    db.execute(
        "UPDATE records_requests SET answers_sent = 1"
        " WHERE EXISTS (SELECT 1 FROM outbox WHERE outbox.job_id = 'response-' || records_requests.request_id)"
    )


@MIGRATIONS(name="0022_students_source_id")
def _students_source_id(db: sqlite_utils.Database) -> None:
    # The roster import looks students up by the SIS's sourcedId as well as by SIS id, a chunk of rows at a time,
    # to refuse a row whose ids another student holds (a reused or a changed SIS id); without an index each look-up
    # read the whole table. Not unique: a home may hold a student twice under one sourcedId from before.
    db.execute("CREATE INDEX students_source_id ON students (source_id)")


@MIGRATIONS(name="0023_request_release_failed_on")
def _request_release_failed_on(db: sqlite_utils.Database) -> None:
    # A request whose release failed is owed an answer again, and is flagged overdue and reminded of counting
    # from the local day the release failed (spec/requests.md §5); before, it was never flagged. Requests
    # already in release_failed take that day from their latest `request.release_failed` audit entry (at the
    # releaser, the node saw the transfer end; at the requester, the news arrived), in the node's time zone as
    # the timer counts, else from their last change.
    _run(
        db,
        """
        ALTER TABLE records_requests ADD COLUMN failed_on TEXT;
        UPDATE records_requests SET failed_on = COALESCE(
            (SELECT date(MAX(at), 'localtime') FROM audit_log
             WHERE action = 'request.release_failed' AND subject = records_requests.request_id),
            date(updated_at, 'localtime'))
        WHERE state = 'release_failed'
        """,
    )


@MIGRATIONS(name="0024_import_log_as_imported")
def _import_log_as_imported(db: sqlite_utils.Database) -> None:
    # The import log's destination columns (state id, username, e-mail of the student here) were read from the
    # students table whenever the log was viewed, so a student changed, detached or purged since showed other
    # values than the import wrote, or none. Each student's result now keeps them as the import left them.
    # Results from before take what the student holds now (what the log showed until now), except that a
    # student the import created had no username or e-mail then (created without an account); a student no
    # longer here stays unknown (NULL, shown empty, as before).
    # And the source side (names, grade, state id, username, e-mail as sent) was read from the sender's signed
    # manifest, verified against the keys the sender publishes now: once those were forgotten (a re-pin after
    # a key change) the log could not be shown at all. It is kept at preview now, when the manifest is
    # verified; students previewed before stay NULL here and the log reads them from the manifest as before
    # (previewing again an import that has not completed fills them in).
    _run(
        db,
        """
        ALTER TABLE import_students ADD COLUMN destination_state_id TEXT;
        ALTER TABLE import_students ADD COLUMN destination_username TEXT;
        ALTER TABLE import_students ADD COLUMN destination_email TEXT;
        ALTER TABLE import_students ADD COLUMN sent_given_name TEXT;
        ALTER TABLE import_students ADD COLUMN sent_family_name TEXT;
        ALTER TABLE import_students ADD COLUMN sent_grade TEXT;
        ALTER TABLE import_students ADD COLUMN sent_state_id TEXT;
        ALTER TABLE import_students ADD COLUMN sent_username TEXT;
        ALTER TABLE import_students ADD COLUMN sent_email TEXT;
        UPDATE import_students SET
            destination_state_id = (SELECT state_id FROM students WHERE sis_id = import_students.destination_sis_id),
            destination_username = CASE WHEN created_student THEN '' ELSE
                (SELECT username FROM students WHERE sis_id = import_students.destination_sis_id) END,
            destination_email = CASE WHEN created_student THEN '' ELSE
                (SELECT email FROM students WHERE sis_id = import_students.destination_sis_id) END
        WHERE result = 'imported' AND destination_sis_id IS NOT NULL
        """,
    )


@MIGRATIONS(name="0025_manifest_redactions")
def _manifest_redactions(db: sqlite_utils.Database) -> None:
    # A purge erases a received record's content from the sender's signed manifest kept for provenance too
    # (node.purged_content): the bytes then no longer match the signature, so the row says which records were
    # erased, when, and which of the sender's keys verified the manifest just before (JSON; NULL: as signed).
    db.execute("ALTER TABLE transfer_manifests ADD COLUMN redacted TEXT")


@MIGRATIONS(name="0026_one_line_names")
def _one_line_names(db: sqlite_utils.Database) -> None:
    # Versions before e6947e8 and 710d969 took a tab or a line break in an operator's full name and in the
    # coordinator contact; both now go out in signed documents whose readers refuse them (a records request's
    # requester, a response's person, the descriptor's coordinator). Upgraded, such an operator could not ask
    # for, release or write about records (request.invalid), and every upgraded peer and directory refused the
    # node's descriptor. Nothing renames an operator, so each such character becomes a space here. The pattern
    # is the one the checks use, written out: this migration must do the same whatever they become.
    control = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

    def one_line(text: str) -> str:
        return " ".join(control.sub(" ", text).split()) if control.search(text) else text

    renamed = [
        (name, username)
        for username, full_name in db.execute("SELECT username, full_name FROM users").fetchall()
        if (name := one_line(full_name)) != full_name and name
    ]
    db.conn.executemany("UPDATE users SET full_name = ? WHERE username = ?", renamed)
    row = db.execute("SELECT value FROM settings WHERE key = 'district.contact'").fetchone()
    contact = json.loads(row[0]) if row else None
    if isinstance(contact, dict):
        cleaned = {k: one_line(v) if isinstance(v, str) else v for k, v in contact.items()}
        if cleaned != contact and cleaned.get("name"):
            db.execute(
                "UPDATE settings SET value = ? WHERE key = 'district.contact'", [json.dumps(cleaned, sort_keys=True)]
            )


@MIGRATIONS(name="0027_manifest_signers")
def _manifest_signers(db: sqlite_utils.Database) -> None:
    # The sender's identity key that verified a manifest at acceptance (spec/envelope.md §5.3): checked again
    # later against the sender's keys as held then, an accepted transfer could no longer be imported or its
    # documents verified once those keys were re-pinned (the old ones forgotten). A transfer accepted before
    # this has NULL here until the first check after the upgrade, which records the key held then that verifies
    # it (node.import_preview.verified_manifest).
    _run(
        db,
        """
        ALTER TABLE transfer_manifests ADD COLUMN signer_key_id TEXT;
        ALTER TABLE transfer_manifests ADD COLUMN signer_public_key BLOB
        """,
    )


@MIGRATIONS(name="0029_students_inactive_since")
def _students_inactive_since(db: sqlite_utils.Database) -> None:
    # When a student was marked inactive (left the district, or inactive in the roster): an import's preview
    # says so of a student it matches to one ("marked inactive since DATE"), so that a coordinator checks this
    # is the same child returning before records land on them. Students inactive before now take the day of
    # their last change, when they were inactive already: the closest the database holds.
    db.execute("ALTER TABLE students ADD COLUMN inactive_since TEXT")
    db.execute("UPDATE students SET inactive_since = updated_at WHERE enrollment_status = 'inactive'")


@MIGRATIONS(name="0030_purged_records")
def _purged_records(db: sqlite_utils.Database) -> None:
    # What was purged here (ids, never content), so that nothing brings it back unasked (node.purged_content):
    # a transfer that arrived before the purge, or the district's nightly assessments CSV. source_domain is the
    # sender's domain and record_id its record id for a received record; '' and the result id for a result of
    # the district's own. purged_unopened: envelopes held unopened when a purge came, which the purge reaches
    # when they are accepted. Purges from before: the records erased from manifests, and every result purged.
    _run(
        db,
        """
        CREATE TABLE purged_records (
            source_domain TEXT NOT NULL,
            record_id TEXT NOT NULL,
            kind TEXT,
            student_sis_id TEXT,
            purged_at TEXT NOT NULL,
            purged_by TEXT NOT NULL,
            PRIMARY KEY (source_domain, record_id)
        );
        CREATE TABLE purged_unopened (
            transfer_id TEXT NOT NULL REFERENCES transfers (transfer_id),
            record_id TEXT NOT NULL,
            PRIMARY KEY (transfer_id, record_id)
        );
        INSERT OR IGNORE INTO purged_records (source_domain, record_id, purged_at, purged_by)
            SELECT t.peer, r.value, json_extract(m.redacted, '$.at'), '(before 0030)'
            FROM transfer_manifests m JOIN transfers t ON t.transfer_id = m.transfer_id,
                 json_each(m.redacted, '$.records') r
            WHERE m.redacted IS NOT NULL;
        INSERT OR IGNORE INTO purged_records (source_domain, record_id, kind, student_sis_id, purged_at, purged_by)
            SELECT '', json_extract(details, '$.result_id'), 'assessment', subject, at, actor FROM audit_log
            WHERE action = 'assessment.purge' AND json_extract(details, '$.result_id') IS NOT NULL
        """,
    )


@MIGRATIONS(name="0031_outgoing_manifests")
def _outgoing_manifests(db: sqlite_utils.Database) -> None:
    # The sender's own manifest of a transfer not delivered yet: the envelope is encrypted to the receiver, so
    # this is the only copy the sender can seal again from once the key that signed it is revoked
    # (node.envelope_reseal). Dropped when the transfer leaves `sealed`. Transfers sealed before have none.
    _run(db, "CREATE TABLE outgoing_manifests (transfer_id TEXT PRIMARY KEY, manifest BLOB NOT NULL)")


@MIGRATIONS(name="0034_former_sis_ids")
def _former_sis_ids(db: sqlite_utils.Database) -> None:
    # A student's former SIS numbers (storage.students.renumber): other districts' copies still name the child
    # by them, so matching and reading commands resolve them to the current number. Students renumbered before
    # take theirs from the student.renumbered audit entries, in order, so that a chain ends at the newest
    # number and a number held by a student now is nobody's former one.
    _run(
        db,
        """
        CREATE TABLE former_sis_ids (
            former_sis_id TEXT PRIMARY KEY,
            current_sis_id TEXT NOT NULL,
            renumbered_at TEXT NOT NULL
        );
        CREATE INDEX former_sis_ids_current ON former_sis_ids (current_sis_id)
        """,
    )
    renumbered = db.execute(
        "SELECT json_extract(details, '$.from'), json_extract(details, '$.to'), at FROM audit_log "
        "WHERE action = 'student.renumbered' ORDER BY seq"
    ).fetchall()
    for old, new, at in renumbered:
        if not old or not new:
            continue
        db.execute("UPDATE former_sis_ids SET current_sis_id = ? WHERE current_sis_id = ?", [new, old])
        db.execute("DELETE FROM former_sis_ids WHERE former_sis_id = ?", [new])
        db.execute("INSERT OR REPLACE INTO former_sis_ids VALUES (?, ?, ?)", [old, new, at])
    db.execute("DELETE FROM former_sis_ids WHERE former_sis_id IN (SELECT sis_id FROM students)")


@MIGRATIONS(name="0036_received_transfer_counts")
def _received_transfer_counts(db: sqlite_utils.Database) -> None:
    # A receiver counts what a transfer holds when its code opens the envelope; versions before this one did
    # not, and showed an opened transfer as holding 0 students. Its manifest, kept since acceptance, says.
    from protocol import SatchelError
    from protocol.manifest import parse_manifest

    opened = db.execute(
        "SELECT t.transfer_id, m.manifest FROM transfers t JOIN transfer_manifests m ON m.transfer_id = t.transfer_id"
        " WHERE t.side = 'receiver' AND t.students = 0"
    ).fetchall()
    for transfer_id, data in opened:
        try:
            manifest = parse_manifest(bytes(data), max_length=len(data))
        except SatchelError:
            continue  # left as it was: shown as not counted, as before
        db.execute(
            "UPDATE transfers SET students = ?, records = ?, documents = ? WHERE transfer_id = ?",
            [len(manifest.students), len(manifest.records), len(manifest.documents()), transfer_id],
        )
