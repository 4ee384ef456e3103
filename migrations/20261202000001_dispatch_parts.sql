-- One upstream id per part: a long message sent as several parts gets an id
-- for each, and a delivery report names one of them. Reports are matched by
-- (route, upstream id), so the route is kept here beside the id.
CREATE TABLE dispatch_part (
    smslog_id   BIGINT NOT NULL REFERENCES dispatch_log (smslog_id) ON DELETE CASCADE,
    part        SMALLINT NOT NULL, -- 0-based, in sending order
    route       TEXT NOT NULL,
    upstream_id TEXT NOT NULL,
    PRIMARY KEY (smslog_id, part)
);
CREATE UNIQUE INDEX dispatch_part_upstream ON dispatch_part (route, upstream_id);

INSERT INTO dispatch_part (smslog_id, part, route, upstream_id)
SELECT smslog_id, 0, route, upstream_id FROM dispatch_log WHERE upstream_id IS NOT NULL;

DROP INDEX dispatch_log_upstream;
ALTER TABLE dispatch_log DROP COLUMN upstream_id;
