-- lorawatch initial schema: device registry, raw uplinks, readings, events, gateways, dead letters.
-- Hypertables need the TimescaleDB extension; every unique index on one includes its time column.

CREATE EXTENSION IF NOT EXISTS timescaledb;

-- The device registry. Devices seen on the network but not yet assigned by an admin are registered
-- automatically with kind 'unassigned' and what their uplinks say about them.
CREATE TABLE devices (
    device_id         text PRIMARY KEY,           -- TTS end_device_ids.device_id, or ChirpStack devEui
    source            text NOT NULL DEFAULT 'tts' CHECK (source IN ('tts', 'chirpstack', 'manual')),
    application_id    text,
    dev_eui           text,
    join_eui          text,
    dev_addr          text,
    brand_id          text,                       -- TTN Device Repository brand, selects the decoder
    model_id          text,
    kind              text NOT NULL DEFAULT 'unassigned' CHECK (kind IN ('gully', 'care', 'unassigned')),
    name              text,
    location_name     text,
    latitude          double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude         double precision CHECK (longitude BETWEEN -180 AND 180),
    -- Gully geometry: the sensor's height above the gully floor, and the outlet invert (the bottom of
    -- the outlet pipe) above the floor. Water level = sensor_height_mm - distance_mm.
    sensor_height_mm  double precision CHECK (sensor_height_mm > 0),
    outlet_invert_mm  double precision CHECK (outlet_invert_mm >= 0),
    care_room         text,
    care_group        text,
    attributes        jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_seen        timestamptz,
    last_seen         timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'gully' OR outlet_invert_mm IS NULL OR sensor_height_mm IS NULL
           OR outlet_invert_mm < sensor_height_mm)
);
CREATE INDEX devices_kind_idx ON devices (kind);

-- One row per uplink as received, keyed by its natural key so redelivery and backfill are no-ops.
CREATE TABLE uplinks (
    time            timestamptz NOT NULL,         -- NS received_at (TTS) / event time (ChirpStack)
    uplink_key      text NOT NULL,                -- tts:<dev>:<session_key_id>:<f_cnt> | cs:<dedup id> | sim:<as:up id>
    device_id       text NOT NULL,
    source          text NOT NULL,                -- tts | chirpstack
    simulated       boolean NOT NULL DEFAULT false,
    f_port          integer,
    f_cnt           bigint,                       -- uint32 on the wire: BIGINT, never INTEGER
    frm_payload     bytea,
    session_key_id  text,
    dev_addr        text,
    frequency_hz    bigint,
    spreading_factor smallint,
    bandwidth_hz    integer,
    rssi_dbm        real,                         -- best over the gateways that heard it
    snr_db          real,
    gateway_count   smallint NOT NULL DEFAULT 0,
    decoded         jsonb,                        -- the LNS's decoded payload; ours is recomputed from frm_payload
    decoder         text,                         -- 'lorawatch:<brand/model>' | 'lns' | NULL (MAC-only)
    rx_metadata     jsonb,                        -- gateways, without uplink_token
    received_at     timestamptz NOT NULL DEFAULT now(),  -- when we received it
    UNIQUE (uplink_key, time)
);
-- No default time-only index: every query names a device or a key, and each index costs every insert.
SELECT create_hypertable('uplinks', 'time', chunk_time_interval => interval '7 days', create_default_indexes => false);
CREATE INDEX uplinks_device_time_idx ON uplinks (device_id, time DESC);

-- Normalised measurements: one row per device and timestamp, a column per vocabulary name
-- (decoders/types.py VOCABULARY; a test keeps the two in step). Wide rows keep the 35 M-row gully year
-- compact and make a one-gully chart an index range scan.
CREATE TABLE readings (
    time              timestamptz NOT NULL,
    device_id         text NOT NULL,
    distance_mm       double precision,
    distance2_mm      double precision,
    distance_valid    boolean,
    valid_samples     integer,
    battery_v         real,
    battery_pct       real,
    temperature_c     real,
    humidity_pct      real,
    illuminance_lux   real,
    illuminance       smallint,
    occupied          boolean,
    occupancy_state   smallint,
    motion            boolean,
    motion_count      integer,
    tilted            boolean,
    interrupt         boolean,
    respiratory_rate  real,
    radar_rssi        real,
    fall_detected     boolean,
    lying_down        boolean,
    in_bed            boolean,
    PRIMARY KEY (device_id, time)
);
SELECT create_hypertable('readings', 'time', chunk_time_interval => interval '30 days', create_default_indexes => false);

-- Discrete device events (VS373 alarms, distance alarms and exceptions, resets). History records
-- carry the device's own timestamp; a re-sent history record lands on the same key and is dropped.
CREATE TABLE events (
    time        timestamptz NOT NULL,
    device_id   text NOT NULL,
    kind        text NOT NULL,
    event_key   text NOT NULL DEFAULT '',         -- e.g. the alarm id and status
    attrs       jsonb NOT NULL DEFAULT '{}'::jsonb,
    uplink_key  text,
    PRIMARY KEY (device_id, time, kind, event_key)
);
SELECT create_hypertable('events', 'time', chunk_time_interval => interval '30 days', create_default_indexes => false);

-- Gateways that have heard our devices. Packet Broker hops share gateway_id 'packetbroker', so the
-- key is built from the forwarder's identity for those (see ingest).
CREATE TABLE gateways (
    gateway_key     text PRIMARY KEY,
    gateway_id      text NOT NULL,
    eui             text,
    packet_broker   boolean NOT NULL DEFAULT false,
    latitude        double precision,
    longitude       double precision,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    uplinks         bigint NOT NULL DEFAULT 0
);

-- Everything rejected anywhere in the pipeline, with the raw bytes, so nothing is silently lost.
CREATE TABLE dead_letters (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time          timestamptz NOT NULL DEFAULT now(),
    stage         text NOT NULL,                  -- topic | json | envelope | decode | range | store
    reason        text NOT NULL,
    error_class   text,
    topic         text,
    device_id     text,
    raw           bytea NOT NULL
);
CREATE INDEX dead_letters_stage_idx ON dead_letters (stage, time DESC);

-- Monotonic counters that are not derivable from rows (duplicates dropped).
CREATE TABLE counters (
    name   text PRIMARY KEY,
    value  bigint NOT NULL DEFAULT 0
);
INSERT INTO counters (name) VALUES ('duplicates');
