-- Encrypted participation: a phase's evaluation key (an age recipient; its private half
-- stays with the phase's workers), and which submissions are stored encrypted to it.
ALTER TABLE phases ADD COLUMN evaluation_key TEXT;
ALTER TABLE submissions ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
