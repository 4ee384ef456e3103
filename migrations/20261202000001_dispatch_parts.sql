-- One upstream id per part: a long message sent as several parts gets an id
-- for each, and a delivery report names one of them. Reports are matched by
-- (route, upstream id), so the route and the owner's uid are kept here
-- beside the id: the matcher resolves a report from this table alone. No
-- foreign key: a part row is written only for a message marked sent, whose
-- dispatch_log row is never deleted, and a key check per row would lock
-- every dispatch_log row once more in a campaign's hot path.
CREATE TABLE dispatch_part (
    smslog_id   BIGINT NOT NULL,
    part        SMALLINT NOT NULL, -- 0-based, in sending order
    route       TEXT NOT NULL,
    upstream_id TEXT NOT NULL,
    uid         BIGINT NOT NULL,
    PRIMARY KEY (smslog_id, part)
);
CREATE UNIQUE INDEX dispatch_part_upstream ON dispatch_part (route, upstream_id);

INSERT INTO dispatch_part (smslog_id, part, route, upstream_id, uid)
SELECT smslog_id, 0, route, upstream_id, uid FROM dispatch_log WHERE upstream_id IS NOT NULL;

DROP INDEX dispatch_log_upstream;
ALTER TABLE dispatch_log DROP COLUMN upstream_id;

-- Marking a message sent now changes only unindexed columns of its
-- dispatch_log row; room left on each page lets PostgreSQL make that a
-- heap-only update (no index entries), so the part row above is the only
-- index work sending adds.
ALTER TABLE dispatch_log SET (fillfactor = 70);
