-- Closing, ranking and promoting phases; the organizers' audit log; notifications.

-- Everything organizers do, and every state change the server makes on its own
-- (actor_id NULL). Append-only: the triggers below refuse edits and deletions.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    actor_id INTEGER REFERENCES users (id),
    action   TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    -- JSON with what the action changed.
    detail   TEXT    NOT NULL DEFAULT '{}'
);
CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

ALTER TABLE submissions ADD COLUMN disqualified_reason TEXT;
CREATE INDEX submissions_by_phase_state ON submissions (phase, state);

-- An organizer's change to the advancement list a closed phase's rule proposes.
CREATE TABLE advancement_adjustments (
    phase    INTEGER NOT NULL REFERENCES phases (number),
    user_id  INTEGER NOT NULL REFERENCES users (id),
    advance  INTEGER NOT NULL CHECK (advance IN (0, 1)),
    reason   TEXT    NOT NULL,
    actor_id INTEGER NOT NULL REFERENCES users (id),
    at       INTEGER NOT NULL,
    PRIMARY KEY (phase, user_id)
);

-- A finalized phase's ranking, frozen when its winners were promoted.
CREATE TABLE final_standings (
    phase         INTEGER NOT NULL REFERENCES phases (number),
    rank          INTEGER NOT NULL,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    submission_id INTEGER NOT NULL REFERENCES submissions (id),
    private_loss  REAL    NOT NULL,
    public_rank   INTEGER NOT NULL,
    public_loss   REAL    NOT NULL,
    advanced      INTEGER NOT NULL CHECK (advanced IN (0, 1)),
    -- Why the organizer changed the rule's proposal for this contributor, if they did.
    adjustment    TEXT,
    PRIMARY KEY (phase, user_id)
);
CREATE UNIQUE INDEX final_standings_by_rank ON final_standings (phase, rank);

-- In-app notices for one person ("you advanced to phase 2").
CREATE TABLE notifications (
    id      INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    text    TEXT    NOT NULL,
    link    TEXT    NOT NULL,
    read_at INTEGER
);
CREATE INDEX notifications_by_user ON notifications (user_id, id);
