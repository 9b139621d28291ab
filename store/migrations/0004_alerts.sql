-- Alerts, their audit trail, rule state, silences and the notification outbox.
--
-- The lifecycle lives here, not in a process's memory: any alert worker (or two at once) reads and
-- writes the same rows, and the partial unique index below makes "one open alert per rule and
-- subject" a fact the database enforces, whatever the timing of two workers.

CREATE TABLE alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule             text NOT NULL,
    category         text NOT NULL CHECK (category IN (
                         'flood', 'rising', 'blockage', 'silt', 'sensor_fault', 'offline', 'gateway_offline',
                         'battery_low', 'fall', 'inactivity', 'bathroom_dwell', 'night_activity', 'anomaly')),
    severity         text NOT NULL CHECK (severity IN ('critical', 'warning', 'info')),
    -- What the rule is about: 'device:<devices.id>' or 'gateway:<gateway_key>'.
    subject          text NOT NULL,
    device_ref       integer,
    device_id        text,
    application_id   text,
    gateway_id       text,
    -- The device's kind when the alert opened: 'care' rows are special-category data (sealed later by RLS).
    kind             text NOT NULL DEFAULT 'unassigned',
    state            text NOT NULL CHECK (state IN ('pending', 'firing', 'acknowledged', 'resolved')),
    simulated        boolean NOT NULL DEFAULT false,
    -- Opened from data that arrived after the condition had already ended (backfill, re-sent history):
    -- recorded, never notified.
    late             boolean NOT NULL DEFAULT false,
    -- Data times: the reading that opened it, made it fire, cleared it.
    opened_at        timestamptz NOT NULL,
    firing_at        timestamptz,
    resolved_at      timestamptz,
    -- Wall-clock times of people's actions (time to acknowledge / resolve are measured on these).
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    resolved_by      text,
    assignee         text,
    value            double precision,
    summary          text NOT NULL DEFAULT '',
    details          jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- A device's own alarm identity (VS373 alarm id): the fall rule's state remembers the ids it has
    -- seen, so re-sent history and duplicates never open a second alert.
    device_alarm_id  text,
    notified_at      timestamptz,
    notifications    integer NOT NULL DEFAULT 0,
    escalation_level integer NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule, subject) WHERE state <> 'resolved';
CREATE INDEX alerts_state_idx ON alerts (state, category) WHERE state <> 'resolved';
CREATE INDEX alerts_device_idx ON alerts (device_ref, opened_at DESC);
CREATE INDEX alerts_opened_idx ON alerts (opened_at DESC);
CREATE INDEX alerts_device_alarm_idx ON alerts (subject, device_alarm_id) WHERE device_alarm_id IS NOT NULL;

-- Every transition and every human action on an alert: who, when, why. Append-only by convention here;
-- the API issue makes the app's database role unable to UPDATE or DELETE it.
CREATE TABLE alert_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts (id),
    at          timestamptz NOT NULL DEFAULT now(),
    data_time   timestamptz,
    actor       text NOT NULL,              -- 'engine', 'clock', or a person's name
    action      text NOT NULL,              -- opened, firing, acknowledged, resolved, note, assigned, escalated, ...
    from_state  text,
    to_state    text,
    note        text
);
CREATE INDEX alert_log_alert_idx ON alert_log (alert_id, id);

-- What each rule remembers per subject between readings ("above since", last value, learned numbers).
CREATE TABLE rule_state (
    rule        text NOT NULL,
    subject     text NOT NULL,
    state       jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rule, subject)
);

-- Silences: matchers (rule, category, device_id, care_group, ... all AND-ed) and a window. A silenced
-- alert is still recorded; only its notifications are held back.
CREATE TABLE silences (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    matchers    jsonb NOT NULL,
    starts_at   timestamptz NOT NULL DEFAULT now(),
    ends_at     timestamptz NOT NULL,
    created_by  text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    expired_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);

-- The notification outbox: written in the same transaction as the alert change that causes it, then
-- delivered with retries. `idempotency_key` is unique, so a repeated enqueue is a no-op, and it travels
-- in the payload so a receiver can drop the rare repeat a crash between send and commit makes.
CREATE TABLE outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id         bigint REFERENCES alerts (id),
    event            text NOT NULL,          -- opened, repeat, escalated, acknowledged, resolved
    channel          text NOT NULL CHECK (channel IN ('webhook', 'email')),
    route            text NOT NULL,
    target           text NOT NULL,          -- URL or comma-separated addresses (no secrets)
    payload          jsonb NOT NULL,
    idempotency_key  text NOT NULL UNIQUE,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE state = 'pending';
