-- The public, hash-chained log of everything that moves standings. Each entry commits
-- to the previous entry's hash; `body` is the event's JSON exactly as it was hashed.
CREATE TABLE public_log (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE TRIGGER public_log_is_append_only_update BEFORE UPDATE ON public_log
BEGIN
    SELECT RAISE(ABORT, 'the public log is append-only');
END;
CREATE TRIGGER public_log_is_append_only_delete BEFORE DELETE ON public_log
BEGIN
    SELECT RAISE(ABORT, 'the public log is append-only');
END;
