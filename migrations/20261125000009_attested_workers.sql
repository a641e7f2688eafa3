-- Attested workers: the kind of TEE evidence verified when a worker was registered,
-- and phases that accept scores only from attested workers.
ALTER TABLE workers ADD COLUMN attestation TEXT;
ALTER TABLE workers ADD COLUMN attestation_evidence TEXT;
ALTER TABLE phases ADD COLUMN require_attestation INTEGER NOT NULL DEFAULT 0;
