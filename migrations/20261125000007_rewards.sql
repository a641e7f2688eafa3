-- Rewards: each phase's points budget and rule, the ledger of points granted at
-- finalization, and where each contributor wants them paid.
ALTER TABLE phases ADD COLUMN reward_budget INTEGER NOT NULL DEFAULT 0;
ALTER TABLE phases ADD COLUMN reward_rule TEXT NOT NULL DEFAULT 'rank_weighted';
ALTER TABLE users ADD COLUMN payout_account TEXT;
CREATE TABLE reward_ledger (
    id INTEGER PRIMARY KEY,
    phase INTEGER NOT NULL REFERENCES phases (number),
    user_id INTEGER NOT NULL REFERENCES users (id),
    rank INTEGER NOT NULL,
    points INTEGER NOT NULL CHECK (points >= 0),
    rule TEXT NOT NULL,
    at INTEGER NOT NULL,
    UNIQUE (phase, user_id)
);
CREATE INDEX reward_ledger_by_user ON reward_ledger (user_id);
CREATE TRIGGER reward_ledger_is_append_only_update BEFORE UPDATE ON reward_ledger
BEGIN
    SELECT RAISE(ABORT, 'the reward ledger is append-only');
END;
CREATE TRIGGER reward_ledger_is_append_only_delete BEFORE DELETE ON reward_ledger
BEGIN
    SELECT RAISE(ABORT, 'the reward ledger is append-only');
END;
