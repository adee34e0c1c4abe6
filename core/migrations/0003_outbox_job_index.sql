-- Outbox rows are found by job: the publisher marks them by job id, an upload retry reads
-- its job's queue, and erasing a user cascades from jobs. Without this, each is a scan.
CREATE INDEX outbox_job ON outbox (job_id);
