-- Accounts, sessions, phases, submissions and the standings derived from them.
-- Times are unix seconds (INTEGER) so the same schema ports to PostgreSQL (BIGINT).

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    handle        TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL DEFAULT 'contributor' CHECK (role IN ('contributor', 'organizer')),
    created_at    INTEGER NOT NULL
);

-- The cookie holds a random token; only its SHA-256 is stored.
CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Failed logins per key ('account:<email>' or 'address:<ip>') for throttling.
CREATE TABLE login_failures (
    key             TEXT    PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_at INTEGER NOT NULL
);

CREATE TABLE phases (
    number            INTEGER PRIMARY KEY CHECK (number BETWEEN 1 AND 7),
    title             TEXT    NOT NULL,
    summary           TEXT    NOT NULL,
    state             TEXT    NOT NULL CHECK (state IN ('draft', 'upcoming', 'open', 'closed', 'finalized')),
    opens_at          INTEGER NOT NULL,
    closes_at         INTEGER NOT NULL,
    architecture      TEXT    NOT NULL,
    vocab_size        INTEGER NOT NULL,
    max_parameters    INTEGER NOT NULL,
    min_context       INTEGER NOT NULL,
    dataset           TEXT    NOT NULL,
    seq_len           INTEGER NOT NULL,
    windows           INTEGER NOT NULL,
    public_share      REAL    NOT NULL,
    per_day           INTEGER NOT NULL,
    max_bytes         INTEGER NOT NULL,
    advancement_rule  TEXT    NOT NULL CHECK (advancement_rule IN ('top_k', 'top_fraction', 'within_margin')),
    advancement_value REAL    NOT NULL,
    epsilon           REAL    NOT NULL,
    preset            TEXT    NOT NULL,
    updated_at        INTEGER NOT NULL,
    -- Kept current by the store as submissions arrive and standings grow, so pages do
    -- not count 100,000 rows on every request.
    submission_count  INTEGER NOT NULL DEFAULT 0,
    contributor_count INTEGER NOT NULL DEFAULT 0,
    -- Bumped whenever the phase's standings change: readers cache pages by it.
    standings_version INTEGER NOT NULL DEFAULT 0
);

-- Every change of a phase's state, with who did it (NULL: the schedule or a preset load).
CREATE TABLE phase_transitions (
    id         INTEGER PRIMARY KEY,
    phase      INTEGER NOT NULL REFERENCES phases (number),
    from_state TEXT,
    to_state   TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    actor_id   INTEGER REFERENCES users (id),
    reason     TEXT    NOT NULL
);

CREATE TABLE submissions (
    id             INTEGER PRIMARY KEY,
    phase          INTEGER NOT NULL REFERENCES phases (number),
    user_id        INTEGER NOT NULL REFERENCES users (id),
    state          TEXT    NOT NULL CHECK (state IN ('queued', 'validating', 'scoring', 'scored', 'failed')),
    created_at     INTEGER NOT NULL,
    scored_at      INTEGER,
    weights_sha256 TEXT,
    bytes          INTEGER,
    parameters     INTEGER,
    loss           REAL,
    public_loss    REAL,
    private_loss   REAL,
    error          TEXT,
    disqualified   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX submissions_by_phase_user ON submissions (phase, user_id);
CREATE INDEX submissions_by_user ON submissions (user_id, created_at);

-- Each contributor's best scored submission per phase, kept current as scores land,
-- so a leaderboard page is an index range scan rather than an aggregate over all scores.
CREATE TABLE standings (
    phase         INTEGER NOT NULL REFERENCES phases (number),
    user_id       INTEGER NOT NULL REFERENCES users (id),
    submission_id INTEGER NOT NULL REFERENCES submissions (id),
    loss          REAL    NOT NULL,
    parameters    INTEGER NOT NULL,
    achieved_at   INTEGER NOT NULL,
    submissions   INTEGER NOT NULL,
    PRIMARY KEY (phase, user_id)
);
CREATE INDEX standings_by_rank ON standings (phase, loss, achieved_at);

-- Each improvement of a phase's best score: the step line of "best score over time".
CREATE TABLE phase_records (
    phase         INTEGER NOT NULL REFERENCES phases (number),
    at            INTEGER NOT NULL,
    loss          REAL    NOT NULL,
    submission_id INTEGER NOT NULL REFERENCES submissions (id),
    scored_so_far INTEGER NOT NULL
);
CREATE INDEX phase_records_by_phase ON phase_records (phase, at, loss DESC);
