-- Promoted encrypted checkpoints opened after their phase was finalized (its rules open
-- the weights): each file's age file key, revealed by a holder of the phase's evaluation
-- key, and the plaintext file the server decrypted with it and now publishes. A row
-- exists only once the whole checkpoint was opened and found to be the one scored. `dir`
-- is the folder (beside the ciphertext) that this opening wrote, its own, so a second
-- attempt racing it can never touch what was published.
CREATE TABLE opened_files (
    submission_id INTEGER NOT NULL REFERENCES submissions (id),
    dir           TEXT    NOT NULL,
    sealed        TEXT    NOT NULL,
    file_key      TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    bytes         INTEGER NOT NULL,
    sha256        TEXT    NOT NULL,
    PRIMARY KEY (submission_id, name)
);
