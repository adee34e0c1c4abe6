-- Tacit schema v2: webhook endpoints, messages (an outbox written with the event), deliveries,
-- the attempt log, and the last trust each user was notified about.

CREATE TABLE webhook_endpoints (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    url             text NOT NULL,
    description     text NOT NULL DEFAULT '',
    -- empty: every event type
    event_types     text[] NOT NULL DEFAULT '{}',
    -- the signing secrets, raw bytes (shown to the tenant once, as whsec_<base64>)
    secret          bytea NOT NULL,
    previous_secret bytea,
    previous_secret_expires_at timestamptz,
    status          text NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    disabled_reason text,
    disabled_at     timestamptz,
    -- first failure of the current run of failures; NULL after any success
    failing_since   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);

-- One event; its id is the webhook-id header on every attempt to every endpoint.
CREATE TABLE webhook_messages (
    id              text PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    -- erasing a user erases the events about them
    user_id         uuid REFERENCES users(id) ON DELETE CASCADE,
    event_type      text NOT NULL,
    payload         text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_messages_tenant ON webhook_messages (tenant_id, created_at DESC);

-- One message to one endpoint; the relay publishes due rows, the webhook pool attempts them.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    message_id      text NOT NULL REFERENCES webhook_messages(id) ON DELETE CASCADE,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'succeeded', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    lease_until     timestamptz,
    dead_reason     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, status);

CREATE TABLE webhook_attempts (
    id              bigserial PRIMARY KEY,
    delivery_id     uuid NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    message_id      text NOT NULL,
    attempt         integer NOT NULL,
    status_code     integer,
    outcome         text NOT NULL,
    error           text,
    latency_ms      real NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id DESC);

-- The trust last announced by trust.changed, to tell a real change from noise.
CREATE TABLE user_trust_state (
    user_id         uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    probability     real NOT NULL,
    decision        text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
