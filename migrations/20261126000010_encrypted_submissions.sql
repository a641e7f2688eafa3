-- Encrypted participation: a phase's evaluation key (an age recipient; its private half
-- stays with the phase's workers), and the key an encrypted upload and its submission are
-- encrypted to (NULL: plain files). Recording the key, not just a flag, means a key
-- changed mid-upload is caught at the door instead of failing the contributor later.
ALTER TABLE phases ADD COLUMN evaluation_key TEXT;
ALTER TABLE uploads ADD COLUMN encrypted_to TEXT;
ALTER TABLE submissions ADD COLUMN encrypted_to TEXT;
