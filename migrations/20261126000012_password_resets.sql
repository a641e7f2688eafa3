-- Password reset links, issued by an organizer (`ascent admin reset-link HANDLE`) for a
-- contributor who lost their password: the token's SHA-256 only, like sessions. A link
-- is used once (its row is deleted), a newer one replaces older ones, and it expires.
CREATE TABLE password_resets (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX password_resets_by_user ON password_resets (user_id);
