-- One Postgres role per service, each with only what its code does (docs/operations.md,
-- "Database roles"). They are NOLOGIN: the operator makes a login role per deployment
-- that is a member of one of them (or gives one a password and LOGIN), e.g.
--     CREATE ROLE tacit_webhooks_login LOGIN PASSWORD '...' IN ROLE tacit_webhooks;
-- Roles belong to the cluster, not the database, so creating them tolerates a concurrent
-- migration of another database doing the same. Needs CREATEROLE (or a superuser).

DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['tacit_api', 'tacit_workers', 'tacit_relay', 'tacit_webhooks', 'tacit_migrate']
    LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END
$$;

-- Nothing by default: a role sees only what is granted below.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM tacit_api, tacit_workers, tacit_relay, tacit_webhooks;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO tacit_api, tacit_workers, tacit_relay, tacit_webhooks, tacit_migrate;

-- migrate: runs `tacit migrate`, so it owns the tables (ALTER needs the owner). Its login
-- role should take it for the session (ALTER ROLE ... SET role = tacit_migrate) so that
-- what later migrations create is owned by it too.
GRANT CREATE ON SCHEMA public TO tacit_migrate;
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public'
    LOOP
        EXECUTE format('ALTER TABLE public.%I OWNER TO tacit_migrate', t);
    END LOOP;
END
$$;

-- api: the tenant API, uploads, enrolment, erasure, the dashboard. Reads and writes rows;
-- no DDL, and never the schema's bookkeeping.
GRANT SELECT, INSERT, UPDATE, DELETE ON
    tenants, api_keys, users, devices, enrolment_tokens, server_keys, batches, jobs, outbox,
    scores, enrolment_samples, templates, webhook_endpoints, webhook_messages,
    webhook_deliveries, webhook_attempts, user_trust_state
    TO tacit_api;
GRANT SELECT ON schema_migrations TO tacit_api;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tacit_api;

-- workers: claim a job, read its batch and user, write its score, enrolment samples,
-- templates and trust, and queue webhook events. No API keys, tokens, or webhook secrets.
GRANT SELECT ON tenants, users, devices, batches, server_keys TO tacit_workers;
GRANT SELECT, UPDATE ON jobs TO tacit_workers;
GRANT SELECT, INSERT, UPDATE ON outbox TO tacit_workers;
GRANT SELECT, INSERT, UPDATE, DELETE ON scores, enrolment_samples, templates, user_trust_state TO tacit_workers;
GRANT SELECT (id, tenant_id, event_types, status) ON webhook_endpoints TO tacit_workers;
GRANT SELECT, INSERT ON webhook_messages, webhook_deliveries TO tacit_workers;
GRANT USAGE ON SEQUENCE outbox_id_seq TO tacit_workers;

-- relay: publish the outbox, requeue stuck jobs, hand due deliveries to the webhook pool,
-- and queue job.failed events. No scores' values, templates, keys or secrets.
GRANT SELECT, UPDATE ON jobs TO tacit_relay;
GRANT SELECT, INSERT, UPDATE ON outbox TO tacit_relay;
GRANT SELECT ON tenants, users, batches TO tacit_relay;
GRANT SELECT (id, tenant_id, event_types, status) ON webhook_endpoints TO tacit_relay;
GRANT SELECT, INSERT ON webhook_messages TO tacit_relay;
GRANT SELECT, INSERT, UPDATE ON webhook_deliveries TO tacit_relay;
GRANT SELECT (job_id, score, decision) ON scores TO tacit_relay;  -- job.failed's body
-- forgetting previous webhook secrets once their grace period is over (never reading them)
GRANT SELECT (previous_secret_expires_at), UPDATE (previous_secret, previous_secret_expires_at)
    ON webhook_endpoints TO tacit_relay;
GRANT USAGE ON SEQUENCE outbox_id_seq TO tacit_relay;

-- webhooks: claim a delivery, read its message and endpoint, record the attempt. It talks
-- to tenant-chosen URLs, so it reads nothing else: no batches, jobs, scores, keys.
GRANT SELECT, UPDATE ON webhook_deliveries, webhook_endpoints TO tacit_webhooks;
GRANT SELECT ON webhook_messages TO tacit_webhooks;
GRANT SELECT, INSERT ON webhook_attempts TO tacit_webhooks;
GRANT USAGE ON SEQUENCE webhook_attempts_id_seq TO tacit_webhooks;
