-- SMPP server for customers (issue 11): each account binds with its own
-- password (at most 8 characters, SMPP 3.4's limit, stored as an argon2
-- hash like the others), at most smpp_max_binds binds at once across every
-- ingress replica, and at most smpp_throughput submit_sm per second
-- (0 = no limit).
ALTER TABLE accounts ADD COLUMN smpp_password_hash TEXT;
ALTER TABLE accounts ADD COLUMN smpp_max_binds INT NOT NULL DEFAULT 2 CHECK (smpp_max_binds >= 0);
ALTER TABLE accounts ADD COLUMN smpp_throughput INT NOT NULL DEFAULT 0 CHECK (smpp_throughput >= 0);

-- Receipts for SMPP customers (role `callbacks`): a message accepted over
-- SMPP with registered_delivery gets a row from the SUBMIT stream (what the
-- receipt must say about it) and its final status from the STATUS stream,
-- in either order; the row is upserted from both sides, so whichever
-- transaction completes it sees both halves under the row lock, publishes
-- the receipt to the SMPP_OUT stream and deletes the row.
CREATE TABLE smpp_receipts (
    smslog_id     BIGINT PRIMARY KEY,
    uid           BIGINT,
    destination   TEXT,
    sender        TEXT,
    text_start    TEXT,
    submitted_at  TIMESTAMPTZ,
    status        TEXT,
    done_at       TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
