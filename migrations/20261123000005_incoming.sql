-- Incoming messages (playSMS in / ix / sx). Rows are written by the query
-- role from the INCOMING stream; msg_key is the stream's message key, so a
-- redelivered or retried message inserts nothing.

-- Keyword owners: an incoming text whose first word (upper-cased) is a
-- keyword goes to its owner as a handled message.
CREATE TABLE keywords (
    keyword    TEXT PRIMARY KEY CHECK (keyword <> '' AND keyword = upper(keyword)),
    uid        BIGINT NOT NULL REFERENCES accounts (uid),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- From handsets (MO) and admin injects. handled: routed to a keyword owner
-- (op=in); otherwise the sandbox of the first admin (op=sx).
CREATE TABLE incoming (
    in_id       BIGSERIAL PRIMARY KEY,
    msg_key     TEXT NOT NULL UNIQUE,
    uid         BIGINT NOT NULL,
    sender      TEXT NOT NULL,
    receiver    TEXT NOT NULL,
    keyword     TEXT NOT NULL,
    message     TEXT NOT NULL,
    raw         TEXT NOT NULL,
    smsc        TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    handled     BOOLEAN NOT NULL
);
CREATE INDEX incoming_handled ON incoming (uid, received_at DESC, in_id DESC) WHERE handled;
CREATE INDEX incoming_sandbox ON incoming (received_at DESC, in_id DESC) WHERE NOT handled;

-- Internal messages (pv to @user), op=ix.
CREATE TABLE inbox (
    in_id       BIGSERIAL PRIMARY KEY,
    msg_key     TEXT NOT NULL UNIQUE,
    uid         BIGINT NOT NULL,
    sender      TEXT NOT NULL,
    receiver    TEXT NOT NULL,
    msg         TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    deleted     BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX inbox_uid ON inbox (uid, received_at DESC, in_id DESC) WHERE NOT deleted;
