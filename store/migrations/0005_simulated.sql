-- Simulated uplinks (TTS "simulate uplink", `simulated: true`) must be evaluated by the alert rules so
-- that a person testing a device sees the alert it would raise, but they must never move a real
-- device's readings, baselines or state. Their readings and events go to tables of their own, named
-- in the change feed by the uplink keys of the batch's fresh simulated uplinks.
CREATE TABLE simulated_readings (LIKE readings INCLUDING DEFAULTS);
ALTER TABLE simulated_readings ADD COLUMN uplink_key text NOT NULL;
ALTER TABLE simulated_readings ADD PRIMARY KEY (uplink_key, time);
CREATE TABLE simulated_events (LIKE events INCLUDING DEFAULTS);
ALTER TABLE simulated_events ALTER COLUMN uplink_key SET NOT NULL;
ALTER TABLE simulated_events ADD PRIMARY KEY (uplink_key, time, kind, event_key);
ALTER TABLE changes ADD COLUMN simulated_uplinks text[] NOT NULL DEFAULT '{}';
