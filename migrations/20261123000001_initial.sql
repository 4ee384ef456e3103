-- Accounts: the source of truth that the accounts service publishes to the
-- bus as state snapshots. Secrets are stored only in protected form.
CREATE TABLE accounts (
    uid                 BIGSERIAL PRIMARY KEY,
    username            TEXT NOT NULL UNIQUE,
    email               TEXT NOT NULL DEFAULT '',
    name                TEXT NOT NULL DEFAULT '',
    mobile              TEXT NOT NULL DEFAULT '',
    role                SMALLINT NOT NULL CHECK (role IN (2, 3, 4)),
    parent_uid          BIGINT REFERENCES accounts (uid),
    banned              BOOLEAN NOT NULL DEFAULT false,
    deleted             BOOLEAN NOT NULL DEFAULT false,
    webservices_enabled BOOLEAN NOT NULL DEFAULT false,
    webservices_ip      TEXT NOT NULL DEFAULT '127.0.0.1',
    token_lookup        TEXT UNIQUE,
    token_sealed        TEXT,
    password_hash       TEXT,
    bulk_password_hash  TEXT,
    timezone            TEXT NOT NULL DEFAULT '+0000',
    footer              TEXT NOT NULL DEFAULT '',
    sender              TEXT NOT NULL DEFAULT '',
    revision            BIGINT NOT NULL DEFAULT 1,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email)) WHERE email <> '' AND NOT deleted;

-- Ledger: balances change only together with an entry whose unique ref
-- makes a redelivered submission a no-op.
CREATE TABLE balances (
    uid      BIGINT PRIMARY KEY REFERENCES accounts (uid),
    balance  NUMERIC NOT NULL DEFAULT 0,
    revision BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE ledger_entries (
    id         BIGSERIAL PRIMARY KEY,
    ref        TEXT NOT NULL UNIQUE,
    uid        BIGINT NOT NULL REFERENCES accounts (uid),
    kind       TEXT NOT NULL CHECK (kind IN ('charge', 'rejected', 'credit_add', 'credit_deduct')),
    amount     NUMERIC NOT NULL,
    messages   INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_uid ON ledger_entries (uid, id);

CREATE TABLE rates (
    prefix TEXT PRIMARY KEY CHECK (prefix ~ '^[0-9]{1,10}$'),
    rate   NUMERIC NOT NULL CHECK (rate >= 0)
);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Scheduler: chunks wait here until due; released_at marks a publish.
CREATE TABLE scheduled_chunks (
    chunk_id    TEXT PRIMARY KEY,
    queue       TEXT NOT NULL,
    release_at  TIMESTAMPTZ NOT NULL,
    payload     JSONB NOT NULL,
    released_at TIMESTAMPTZ
);
CREATE INDEX scheduled_chunks_due ON scheduled_chunks (release_at) WHERE released_at IS NULL;

-- Dispatcher: a claim is written before the upstream call, so a crashed
-- dispatcher's successor knows which messages may already be out.
CREATE TABLE dispatch_log (
    smslog_id   BIGINT PRIMARY KEY,
    uid         BIGINT NOT NULL,
    route       TEXT NOT NULL,
    state       SMALLINT NOT NULL, -- 0 claimed, 1 sent, 2 failed
    upstream_id TEXT,
    attempts    INTEGER NOT NULL DEFAULT 1,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX dispatch_log_upstream ON dispatch_log (route, upstream_id) WHERE upstream_id IS NOT NULL;

-- Query projection: what ds answers from.
CREATE TABLE queues (
    queue        TEXT PRIMARY KEY,
    uid          BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    scheduled_at TIMESTAMPTZ,
    released     BOOLEAN NOT NULL
);

CREATE TABLE outgoing (
    smslog_id   BIGINT PRIMARY KEY,
    uid         BIGINT NOT NULL,
    queue       TEXT,
    src         TEXT,
    dst         TEXT,
    msg         TEXT,
    footer      TEXT,
    dt          TIMESTAMPTZ,
    updated_at  TIMESTAMPTZ NOT NULL,
    status      SMALLINT NOT NULL,
    status_rank SMALLINT NOT NULL,
    upstream_id TEXT,
    reason      TEXT
);
CREATE INDEX outgoing_uid_dt ON outgoing (uid, dt DESC, smslog_id DESC);
CREATE INDEX outgoing_queue ON outgoing (queue);
