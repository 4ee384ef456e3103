-- playSMS admin ops (accountadd, accountpref, accountconf, loginkeyset).
-- A removed account frees its username and email for a new account, as in
-- playSMS, so uniqueness covers live accounts only.
ALTER TABLE accounts DROP CONSTRAINT accounts_username_key;
CREATE UNIQUE INDEX accounts_username_live ON accounts (username) WHERE NOT deleted;

-- Preference and configuration fields that no role acts on yet (address,
-- city, language, forwarding flags...): kept as given, per account.
ALTER TABLE accounts ADD COLUMN profile JSONB NOT NULL DEFAULT '{}';

-- Sender IDs an admin approved for the account; accountconf's data_sender
-- must be one of them (playSMS: "Invalid sender ID" otherwise).
ALTER TABLE accounts ADD COLUMN approved_senders TEXT[] NOT NULL DEFAULT '{}';

-- The single-use ws_login key, stored as a keyed hash like tokens.
ALTER TABLE accounts ADD COLUMN login_key_lookup TEXT;
ALTER TABLE accounts ADD COLUMN login_key_expires_at TIMESTAMPTZ;
