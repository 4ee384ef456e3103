-- Delivery-report callbacks of the bulk HTTP API (role `callbacks`).
-- A target is recorded from the submit stream for each dlr=1 message of an
-- account with a callback URL; an outbox row from the status stream for each
-- final status of an account with a callback URL. A callback is due when
-- both exist (the two streams may be read in either order).
CREATE TABLE callback_targets (
    smslog_id   BIGINT PRIMARY KEY,
    uid         BIGINT NOT NULL,
    destination TEXT NOT NULL,
    url         TEXT NOT NULL
);

CREATE TABLE callback_outbox (
    smslog_id BIGINT PRIMARY KEY,
    status    TEXT NOT NULL,
    done_at   TIMESTAMPTZ NOT NULL,
    attempts  INT NOT NULL DEFAULT 0,
    next_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX callback_outbox_due ON callback_outbox (next_at);
