-- Bulk HTTP API: message templates and the delivery-report callback URL per
-- account, the global stop list (code 1042), per-account do-not-disturb
-- lists (code 1732). Numbers are stored as digits only.
ALTER TABLE accounts ADD COLUMN templates TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE accounts ADD COLUMN dlr_callback_url TEXT;

CREATE TABLE stoplist (
    number TEXT PRIMARY KEY
);

CREATE TABLE dnd (
    uid    BIGINT NOT NULL REFERENCES accounts (uid),
    number TEXT NOT NULL,
    PRIMARY KEY (uid, number)
);
