-- The submission pipeline: held-out data, resumable uploads, the durable job queue,
-- workers and API tokens.

-- Held-out token shards, stored by content hash; never served to contributors.
CREATE TABLE datasets (
    sha256      TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    bytes       INTEGER NOT NULL,
    tokens      INTEGER NOT NULL,
    added_at    INTEGER NOT NULL,
    added_by    INTEGER REFERENCES users (id)
);

ALTER TABLE phases ADD COLUMN data_sha256 TEXT REFERENCES datasets (sha256);
-- Keys the public/private split of windows; known to the server and organizers only.
ALTER TABLE phases ADD COLUMN split_secret TEXT NOT NULL DEFAULT '';
UPDATE phases SET split_secret = lower(hex(randomblob(32)));
-- Most seconds one evaluation may take, from claim to result.
ALTER TABLE phases ADD COLUMN time_limit_seconds INTEGER NOT NULL DEFAULT 600;

-- Who may enter a phase beyond phase 1 (promoted from the previous phase, or invited).
CREATE TABLE phase_entrants (
    phase    INTEGER NOT NULL REFERENCES phases (number),
    user_id  INTEGER NOT NULL REFERENCES users (id),
    reason   TEXT    NOT NULL CHECK (reason IN ('promoted', 'invited')),
    at       INTEGER NOT NULL,
    actor_id INTEGER REFERENCES users (id),
    PRIMARY KEY (phase, user_id)
);

-- An upload in progress: its files are written under <data>/checkpoints/<id>/, the
-- same place the submission made from it reads them, so finishing moves no bytes.
CREATE TABLE uploads (
    id            TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    phase         INTEGER NOT NULL REFERENCES phases (number),
    fingerprint   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    submission_id INTEGER REFERENCES submissions (id)
);
CREATE UNIQUE INDEX uploads_unfinished ON uploads (user_id, phase, fingerprint) WHERE submission_id IS NULL;
CREATE INDEX uploads_by_expiry ON uploads (expires_at) WHERE submission_id IS NULL;

CREATE TABLE upload_files (
    upload_id TEXT    NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    name      TEXT    NOT NULL,
    bytes     INTEGER NOT NULL,
    received  INTEGER NOT NULL DEFAULT 0,
    sha256    TEXT,
    PRIMARY KEY (upload_id, name)
);

-- Machines that score. The server's own in-process worker is one of them.
CREATE TABLE workers (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    token_hash        TEXT    NOT NULL UNIQUE,
    built_in          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    created_by        INTEGER REFERENCES users (id),
    revoked_at        INTEGER,
    last_seen_at      INTEGER,
    device            TEXT,
    evaluator_version TEXT
);

ALTER TABLE submissions ADD COLUMN upload_id TEXT REFERENCES uploads (id);
-- SHA-256 over the sorted "<sha256>  <name>" lines of its files: the checkpoint as received.
ALTER TABLE submissions ADD COLUMN files_sha256 TEXT;
-- 0 once it failed on our side (a lost worker, a timeout): it does not use up the quota.
ALTER TABLE submissions ADD COLUMN counts_toward_quota INTEGER NOT NULL DEFAULT 1;
-- JSON array of each window's summed cross-entropy, as the worker measured it.
ALTER TABLE submissions ADD COLUMN window_nll TEXT;
ALTER TABLE submissions ADD COLUMN scored_by INTEGER REFERENCES workers (id);
ALTER TABLE submissions ADD COLUMN evaluator_version TEXT;
ALTER TABLE submissions ADD COLUMN device TEXT;
CREATE INDEX submissions_by_files ON submissions (files_sha256);
CREATE INDEX submissions_by_weights ON submissions (weights_sha256);

-- One job per submission: the durable queue. A job is claimed under a lease that
-- heartbeats renew; an expired lease puts it back (with backoff) until max_attempts.
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY,
    submission_id     INTEGER NOT NULL UNIQUE REFERENCES submissions (id),
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL DEFAULT 3,
    available_at      INTEGER NOT NULL,
    worker_id         INTEGER REFERENCES workers (id),
    lease_hash        TEXT,
    lease_expires_at  INTEGER,
    started_at        INTEGER,
    deadline_at       INTEGER,
    stage             TEXT,
    progress_done     INTEGER,
    progress_total    INTEGER,
    last_error        TEXT,
    finished_at       INTEGER
);
CREATE INDEX jobs_pending ON jobs (available_at, id) WHERE finished_at IS NULL;

-- Contributors' tokens for `ascent-eval submit`; only the SHA-256 is kept.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);
