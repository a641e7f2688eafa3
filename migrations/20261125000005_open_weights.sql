-- Whether a phase's promoted checkpoints become public downloads once it is finalized.
ALTER TABLE phases ADD COLUMN open_weights INTEGER NOT NULL DEFAULT 0;
