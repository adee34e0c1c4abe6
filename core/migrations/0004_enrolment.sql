-- Tacit schema v4: enrolment windows opened by the tenant, where each enrolment sample came
-- from, held samples, versioned templates and the rebuilds a worker owes.

-- While a window is open, enrol batches of its user (and device, when set) count for its factors.
CREATE TABLE enrolment_windows (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_id       uuid REFERENCES devices(id) ON DELETE CASCADE,
    factors         text[] NOT NULL,
    -- the window's samples start the profile afresh (lost-phone recovery)
    replace         boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    closed_at       timestamptz
);
CREATE INDEX enrolment_windows_user ON enrolment_windows (user_id, expires_at DESC);

-- the window an enrol batch was accepted in
ALTER TABLE batches ADD COLUMN enrolment_id uuid REFERENCES enrolment_windows(id) ON DELETE SET NULL;

ALTER TABLE enrolment_samples
    ADD COLUMN device_id uuid REFERENCES devices(id) ON DELETE CASCADE,
    ADD COLUMN batch_id uuid REFERENCES batches(id) ON DELETE CASCADE,
    ADD COLUMN enrolment_id uuid REFERENCES enrolment_windows(id) ON DELETE SET NULL,
    -- held: contradicted the template; kept aside until the tenant accepts it or it expires
    ADD COLUMN status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'held')),
    ADD COLUMN held_until timestamptz;
CREATE INDEX enrolment_samples_device ON enrolment_samples (device_id);

-- bumped on every rebuild, so a tenant sees that a profile changed
ALTER TABLE templates ADD COLUMN version integer NOT NULL DEFAULT 1;

-- A template a worker must rebuild from the samples left (after a revocation, an accepted
-- hold) or re-embed from the stored batches (after a model upgrade). The relay publishes
-- rows not yet published (or published long ago); the worker deletes the row when done.
CREATE TABLE template_rebuilds (
    user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    factor          text NOT NULL,
    tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    reembed         boolean NOT NULL DEFAULT false,
    reason          text NOT NULL,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    PRIMARY KEY (user_id, factor)
);

-- Retention of biometric data: raw verify batches (rows and blobs) older than this many days
-- are deleted by the relay's sweeper; NULL: the deployment's TACIT_RETENTION__VERIFY_DAYS.
ALTER TABLE tenants ADD COLUMN retention_days integer CHECK (retention_days BETWEEN 1 AND 3650);
-- the sweeper finds old batches, published outbox rows and finished webhook messages by time
CREATE INDEX batches_received ON batches (received_at);
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE INDEX enrolment_samples_batch ON enrolment_samples (batch_id);
CREATE INDEX enrolment_samples_window ON enrolment_samples (enrolment_id) WHERE enrolment_id IS NOT NULL;
CREATE INDEX batches_enrolment ON batches (enrolment_id) WHERE enrolment_id IS NOT NULL;
