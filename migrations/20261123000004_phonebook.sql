-- Phonebook: contacts and groups per account, for get_contact,
-- get_contact_group and `#CODE` destinations in pv. Postgres is the source
-- of truth; each group with its member numbers is also published on the
-- state stream so the ingress expands `#CODE` from memory.
CREATE TABLE phonebook_groups (
    gpid        BIGSERIAL PRIMARY KEY,
    uid         BIGINT NOT NULL REFERENCES accounts (uid),
    name        TEXT NOT NULL,
    -- Stored upper-case, as playSMS does.
    code        TEXT NOT NULL CHECK (code <> '' AND code = upper(code)),
    flag_sender SMALLINT NOT NULL DEFAULT 0,
    -- Bumped on every change (also of membership), so a replica never
    -- replaces a newer group snapshot with an older one.
    revision    BIGINT NOT NULL DEFAULT 1,
    UNIQUE (uid, code)
);

CREATE TABLE phonebook_contacts (
    pid    BIGSERIAL PRIMARY KEY,
    uid    BIGINT NOT NULL REFERENCES accounts (uid),
    name   TEXT NOT NULL DEFAULT '',
    -- As given (`+628...`, `0811...`): playSMS returns and sends it as stored.
    mobile TEXT NOT NULL,
    email  TEXT NOT NULL DEFAULT '',
    tags   TEXT NOT NULL DEFAULT '',
    -- Re-importing the same number updates the contact instead of adding one.
    UNIQUE (uid, mobile)
);

CREATE TABLE phonebook_members (
    gpid BIGINT NOT NULL REFERENCES phonebook_groups (gpid) ON DELETE CASCADE,
    pid  BIGINT NOT NULL REFERENCES phonebook_contacts (pid) ON DELETE CASCADE,
    PRIMARY KEY (gpid, pid)
);
CREATE INDEX phonebook_members_pid ON phonebook_members (pid);
