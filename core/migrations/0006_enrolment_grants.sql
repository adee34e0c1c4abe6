-- What the enrolment windows, template rebuilds and retention (0004) need from each
-- service's role (0005): grants follow the code that touches each table.
ALTER TABLE enrolment_windows OWNER TO tacit_migrate;
ALTER TABLE template_rebuilds OWNER TO tacit_migrate;

-- api: opens, lists and closes windows; revocation and accept-held record rebuilds;
-- a tenant's retention policy.
GRANT SELECT, INSERT, UPDATE, DELETE ON enrolment_windows, template_rebuilds TO tacit_api;

-- workers: an enrol job checks its window; rebuilds re-embed and write templates.
GRANT SELECT ON enrolment_windows TO tacit_workers;
GRANT SELECT, INSERT, UPDATE, DELETE ON template_rebuilds TO tacit_workers;

-- relay: republishes rebuilds not done in time, and the retention sweep prunes in
-- bounded batches (children of a deleted batch or message go by their foreign keys).
-- Its statements lock the rows they delete (FOR UPDATE ... SKIP LOCKED), which Postgres
-- allows only with UPDATE on some column: each grant names the timestamp the sweep reads,
-- never biometric data (the relay still cannot read an enrolment sample's embeddings).
GRANT SELECT, UPDATE ON template_rebuilds TO tacit_relay;
GRANT SELECT (id, retention_days) ON tenants TO tacit_relay;
GRANT UPDATE (received_at), DELETE ON batches TO tacit_relay;
GRANT DELETE ON outbox TO tacit_relay;
GRANT UPDATE (created_at), DELETE ON webhook_messages TO tacit_relay;
GRANT SELECT (id, status, message_id) ON webhook_deliveries TO tacit_relay;
GRANT SELECT (token_hash, expires_at), UPDATE (expires_at), DELETE ON enrolment_tokens TO tacit_relay;
GRANT SELECT (job_id, batch_id, enrolment_id, status, held_until), UPDATE (held_until), DELETE
    ON enrolment_samples TO tacit_relay;
GRANT SELECT (id, closed_at, expires_at), UPDATE (closed_at), DELETE ON enrolment_windows TO tacit_relay;
GRANT SELECT (enrolment_id) ON batches TO tacit_relay;
