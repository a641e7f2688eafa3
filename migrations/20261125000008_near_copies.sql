-- Near-copy detection: each scored submission's weight fingerprint (JSON array of
-- floats, `domain::fingerprint`) and, when flagged, the earlier submission of another
-- contributor it nearly copies with their similarity.
ALTER TABLE submissions ADD COLUMN fingerprint TEXT;
ALTER TABLE submissions ADD COLUMN near_copy_of INTEGER REFERENCES submissions (id);
ALTER TABLE submissions ADD COLUMN near_copy_similarity REAL;
CREATE INDEX submissions_near_copies ON submissions (near_copy_of) WHERE near_copy_of IS NOT NULL;
