-- Storage parameters of the tables steady traffic writes to (docs/performance.md says why).
-- Setting them takes a brief lock and rewrites nothing: a fillfactor applies to pages filled
-- from now on, autovacuum reads its thresholds at its next look at the table.
--
-- notifications: each row is inserted once and updated at the claim and at the record. Those
-- updates change status, which every partial index names, so they cannot be HOT; what a free
-- tenth of each page buys is that the new version lands on its page, beside the old one, so a
-- batch of claims dirties the pages it read instead of new ones at the end of the table, and
-- page pruning reclaims the old versions' space without waiting for vacuum. Two dead tuples
-- per notification are left behind at the rate Pulse delivers: vacuum once 2 % of the rows
-- (at least a thousand) are dead, instead of the server's 20 %, which at ten million rows
-- would let two million dead tuples pile up before the first pass.
alter table notifications set (
    fillfactor = 90,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05
);

-- delivery_attempts: insert only, deleted with their notification by the purge. Vacuum after
-- the purge's deletes sooner, and after inserts so the visibility map stays current.
alter table delivery_attempts set (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.05
);

-- notification_counts: a few hundred rows whose count the metrics roll-up rewrites on every
-- scrape; count is in no index, so with room on the page those updates are HOT.
alter table notification_counts set (fillfactor = 50);
