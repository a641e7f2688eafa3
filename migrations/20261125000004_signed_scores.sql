-- Signed scores: each worker's ed25519 public key, registered with its token, and
-- for each scored submission the statement its worker signed and the signature.
ALTER TABLE workers ADD COLUMN public_key TEXT;
ALTER TABLE submissions ADD COLUMN score_statement TEXT;
ALTER TABLE submissions ADD COLUMN score_signature TEXT;
ALTER TABLE submissions ADD COLUMN score_key TEXT;
