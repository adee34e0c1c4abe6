-- The age of each factor's oldest queued job (tacit_queue_oldest_age_seconds, read at
-- every scrape and by the autoscaler): one index probe per factor instead of a scan of
-- the queued rows.
CREATE INDEX jobs_queued_age ON jobs (factor, created_at) WHERE status = 'queued';
