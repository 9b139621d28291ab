-- Ingest hardening and the change feed.
--
-- * Device identity is (application_id, device_id): one name in two applications is two devices,
--   told apart by application_id. readings and events refer to a device by its surrogate `id`.
-- * The uplink natural key is unique by itself (the `uplink_keys` ledger): a second path, a ChirpStack
--   deduplicationId seen twice or a backfill with another timestamp is a duplicate, not a second row.
--   Hypertable unique indexes must include the time column, hence a plain table beside `uplinks`.
-- * Dead letters have a natural key (sha256 of topic and bytes) and count repeats.
-- * Counters make `lorawatch status` O(1) and let its accounting balance without count(*) scans.
-- * The change feed: one row per committed ingest batch, ids in commit order (see store/feed.py).

-- Devices ----------------------------------------------------------------------------------------
-- Every device that rows refer to exists before the refs are filled in.
INSERT INTO devices (device_id, source, first_seen, last_seen)
SELECT device_id, min(source), min(time), max(time) FROM uplinks GROUP BY device_id
ON CONFLICT (device_id) DO NOTHING;
INSERT INTO devices (device_id, source)
SELECT DISTINCT device_id, 'tts' FROM (SELECT device_id FROM readings UNION SELECT device_id FROM events) d
ON CONFLICT (device_id) DO NOTHING;
UPDATE devices SET application_id = '' WHERE application_id IS NULL;
ALTER TABLE devices DROP CONSTRAINT devices_pkey;
ALTER TABLE devices ADD COLUMN id integer GENERATED ALWAYS AS IDENTITY;
ALTER TABLE devices ADD PRIMARY KEY (id);
ALTER TABLE devices ALTER COLUMN application_id SET DEFAULT '', ALTER COLUMN application_id SET NOT NULL;
ALTER TABLE devices ADD CONSTRAINT devices_identity UNIQUE (application_id, device_id);
CREATE INDEX devices_device_id_idx ON devices (device_id);

-- Uplinks ----------------------------------------------------------------------------------------
ALTER TABLE uplinks ADD COLUMN application_id text NOT NULL DEFAULT '';
UPDATE uplinks u SET application_id = d.application_id FROM devices d
WHERE d.device_id = u.device_id AND d.application_id <> '';
-- TTS keys name the application too (tts:<application>/<device>:...): one name in two applications is two devices.
UPDATE uplinks SET uplink_key = 'tts:' || application_id || '/' || substr(uplink_key, 5)
WHERE source = 'tts' AND application_id <> '' AND uplink_key LIKE 'tts:%';
CREATE TABLE uplink_keys (
    uplink_key  text PRIMARY KEY,
    time        timestamptz NOT NULL
);
INSERT INTO uplink_keys (uplink_key, time)
SELECT DISTINCT ON (uplink_key) uplink_key, time FROM uplinks ORDER BY uplink_key, time;
ALTER TABLE uplinks DROP CONSTRAINT uplinks_uplink_key_time_key;
CREATE INDEX uplinks_key_idx ON uplinks (uplink_key);

-- Readings and events refer to devices.id ---------------------------------------------------------
ALTER TABLE readings ADD COLUMN device_ref integer;
UPDATE readings r SET device_ref = d.id FROM devices d WHERE d.device_id = r.device_id;
ALTER TABLE readings DROP CONSTRAINT readings_pkey;
ALTER TABLE readings DROP COLUMN device_id;
ALTER TABLE readings ALTER COLUMN device_ref SET NOT NULL;
ALTER TABLE readings ADD PRIMARY KEY (device_ref, time);

ALTER TABLE events ADD COLUMN device_ref integer;
UPDATE events e SET device_ref = d.id FROM devices d WHERE d.device_id = e.device_id;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events DROP COLUMN device_id;
ALTER TABLE events ALTER COLUMN device_ref SET NOT NULL;
ALTER TABLE events ADD PRIMARY KEY (device_ref, time, kind, event_key);

-- Dead letters: one row per distinct message, with a repeat count --------------------------------
ALTER TABLE dead_letters
    ADD COLUMN key bytea,
    ADD COLUMN repeats bigint NOT NULL DEFAULT 1,
    ADD COLUMN last_time timestamptz,
    ADD COLUMN field text;
UPDATE dead_letters SET last_time = time, key = sha256(
    convert_to(coalesce(topic, ''), 'UTF8') || '\x00'::bytea || raw
    || CASE WHEN stage = 'range' THEN '\x00'::bytea || convert_to(reason, 'UTF8') ELSE ''::bytea END);
WITH g AS (SELECT key, min(id) AS keep, count(*) AS n, max(time) AS last FROM dead_letters GROUP BY key)
UPDATE dead_letters d SET repeats = g.n, last_time = g.last FROM g WHERE d.id = g.keep;
DELETE FROM dead_letters d USING (SELECT key, min(id) AS keep FROM dead_letters GROUP BY key) g
WHERE d.key = g.key AND d.id <> g.keep;
ALTER TABLE dead_letters ALTER COLUMN key SET NOT NULL, ALTER COLUMN last_time SET NOT NULL,
    ALTER COLUMN last_time SET DEFAULT now();
CREATE UNIQUE INDEX dead_letters_key_idx ON dead_letters (key);

-- Counters, filled from what is stored now -------------------------------------------------------
-- Names: uplinks, readings, events, duplicates, reading_duplicates, dead:<stage>, skipped:<kind>.
INSERT INTO counters (name, value) VALUES
    ('uplinks', (SELECT count(*) FROM uplinks)),
    ('readings', (SELECT count(*) FROM readings)),
    ('events', (SELECT count(*) FROM events)),
    ('reading_duplicates', 0)
ON CONFLICT (name) DO UPDATE SET value = excluded.value;
INSERT INTO counters (name, value)
SELECT 'dead:' || stage, sum(repeats) FROM dead_letters GROUP BY stage
ON CONFLICT (name) DO UPDATE SET value = excluded.value;

-- The change feed ---------------------------------------------------------------------------------
-- `feed_head` hands out change ids. A batch takes it last, just before commit, and holds its row lock
-- until then, so ids are in commit order: a consumer that has read id N can never later find a
-- committed id below N. Gaps (a rolled-back batch) are harmless.
CREATE TABLE feed_head (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    id        bigint NOT NULL
);
INSERT INTO feed_head (id) VALUES (0);

CREATE TABLE changes (
    id              bigint PRIMARY KEY,
    committed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    uplinks         integer NOT NULL,
    readings        integer NOT NULL,
    events          integer NOT NULL,
    -- exactly the readings rows this batch inserted, as parallel arrays (device_ref, time)
    reading_devices integer[] NOT NULL DEFAULT '{}',
    reading_times   timestamptz[] NOT NULL DEFAULT '{}',
    -- exactly the events rows this batch inserted (device_ref, time, kind, event_key)
    event_devices   integer[] NOT NULL DEFAULT '{}',
    event_times     timestamptz[] NOT NULL DEFAULT '{}',
    event_kinds     text[] NOT NULL DEFAULT '{}',
    event_keys      text[] NOT NULL DEFAULT '{}',
    -- each device with a fresh uplink in the batch, and its newest uplink time (alive)
    seen_devices    integer[] NOT NULL DEFAULT '{}',
    seen_times      timestamptz[] NOT NULL DEFAULT '{}'
);

-- Durable cursors: how far each consumer has read the feed. A consumer moves its cursor in the same
-- transaction as the work the changes caused, so a restart neither misses nor repeats a change.
CREATE TABLE feed_cursors (
    consumer    text PRIMARY KEY,
    position    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
