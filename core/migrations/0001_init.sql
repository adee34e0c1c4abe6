-- Tacit schema v1: tenants, keys, users, devices, batches, jobs, outbox, scores, templates.

CREATE TABLE tenants (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    -- calibrated-score threshold at which a job or a user's trust counts as genuine
    decision_threshold real NOT NULL DEFAULT 0.5 CHECK (decision_threshold >= 0 AND decision_threshold <= 1),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    prefix          text NOT NULL UNIQUE,
    secret_hash     bytea NOT NULL,
    label           text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    external_id     text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, external_id)
);

CREATE TABLE devices (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    public_key      bytea,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE INDEX devices_user ON devices (user_id);

CREATE TABLE enrolment_tokens (
    token_hash      bytea PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at      timestamptz NOT NULL,
    redeemed_at     timestamptz,
    device_id       uuid REFERENCES devices(id) ON DELETE CASCADE
);

CREATE TABLE server_keys (
    key_id          text PRIMARY KEY,
    public_key      bytea NOT NULL,
    status          text NOT NULL CHECK (status IN ('current', 'active', 'retired')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz
);
CREATE UNIQUE INDEX server_keys_one_current ON server_keys (status) WHERE status = 'current';

CREATE TABLE batches (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_id       uuid NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    client_batch_id uuid NOT NULL,
    factor          text NOT NULL,
    purpose         text NOT NULL CHECK (purpose IN ('enrol', 'verify')),
    object_key      text NOT NULL,
    size_bytes      integer NOT NULL,
    key_id          text,
    captured_from   timestamptz,
    captured_to     timestamptz,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, client_batch_id)
);
CREATE INDEX batches_user ON batches (user_id);

CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    batch_id        uuid NOT NULL UNIQUE REFERENCES batches(id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    factor          text NOT NULL,
    purpose         text NOT NULL,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    error_code      text,
    error_message   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    enqueued_at     timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at DESC, id);
CREATE INDEX jobs_user ON jobs (user_id);
CREATE INDEX jobs_open ON jobs (status, factor) WHERE status IN ('queued', 'running');

CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    job_id          uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    queue           text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    -- the relay leaves a row to the API for a moment, so the normal path publishes once
    not_before      timestamptz NOT NULL DEFAULT now() + interval '2 seconds'
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

CREATE TABLE scores (
    job_id          uuid PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    factor          text NOT NULL,
    score           real NOT NULL,
    distance        real NOT NULL,
    llr             real NOT NULL,
    decision        boolean NOT NULL,
    samples         integer NOT NULL,
    model_version   text NOT NULL,
    captured_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scores_user_factor ON scores (user_id, factor, created_at DESC);

-- embeddings of each enrolment batch; the template is rebuilt from all of them
CREATE TABLE enrolment_samples (
    job_id          uuid PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    factor          text NOT NULL,
    model_version   text NOT NULL,
    embeddings      bytea NOT NULL,
    samples         integer NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrolment_samples_user ON enrolment_samples (user_id, factor);

CREATE TABLE templates (
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    factor          text NOT NULL,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    model_version   text NOT NULL,
    data            bytea NOT NULL,
    samples         integer NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, factor)
);
