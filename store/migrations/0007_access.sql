-- Access (issue 12): the API's database roles, care data sealed off by row-level security, users,
-- sessions, API tokens, login attempts and the append-only audit log. docs/security.md explains the
-- design; this file is what PostgreSQL enforces whatever a bug in our Python does.
--
-- * The API connects as `lorawatch_api`: LOGIN, NOINHERIT, a member of `lorawatch_admin`,
--   `lorawatch_highways` and `lorawatch_care` (NOLOGIN). NOINHERIT means it holds none of their
--   privileges until a request runs `SET LOCAL ROLE` for its user's role: a forgotten switch is
--   "permission denied", never a leak. Its own grants are the auth tables only.
-- * Ingest, the alert worker and migrations keep the owner's URL. Ingest writes readings with binary
--   COPY, which PostgreSQL refuses under row-level security, so the owner must be exempt from it: a
--   superuser (the embedded cluster's and the docker image's `lorawatch`) or a BYPASSRLS role.
-- * Care rows are visible to lorawatch_care and lorawatch_admin only: devices by kind and a sticky
--   `sealed` flag, readings and events through their device, alerts by the kind they opened with and
--   their device, alert_log through its alert.
-- * TimescaleDB chunks copy their hypertable's grants but not its policies, so the API roles' grants
--   are revoked from every chunk (seal_chunks(), an event trigger for new chunks).
-- * Roles are cluster-wide (several lorawatch databases may share a cluster): made idempotently, and
--   their attributes set whatever an earlier run or a person made them with.
--
-- Needs a superuser (roles, the event trigger, the owner's exemption above).

DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'migration 0007_access must run as a superuser (it creates roles and an event trigger); '
                        'run `lorawatch db migrate` with a superuser''s LORAWATCH_DATABASE_URL';
    END IF;
END $$;

-- Roles ---------------------------------------------------------------------------------------------
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['lorawatch_admin', 'lorawatch_highways', 'lorawatch_care', 'lorawatch_api'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database of this cluster made it at the same moment
            END;
        END IF;
    END LOOP;
END $$;
ALTER ROLE lorawatch_admin    NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE lorawatch_highways NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE lorawatch_care     NOLOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
-- No password here: the embedded cluster trusts loopback; elsewhere `lorawatch db api-password` sets one.
ALTER ROLE lorawatch_api      LOGIN   NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
GRANT lorawatch_admin, lorawatch_highways, lorawatch_care TO lorawatch_api;

REVOKE ALL ON SCHEMA public FROM lorawatch_admin, lorawatch_highways, lorawatch_care, lorawatch_api;
GRANT USAGE ON SCHEMA public TO lorawatch_admin, lorawatch_highways, lorawatch_care, lorawatch_api;

-- Devices: the sticky seal -------------------------------------------------------------------------
-- A device that has ever been a care device stays sealed: reassigning it (to gully, to unassigned)
-- never shows its care history to highways, because readings, events and alerts follow the device.
-- Only the owner can unseal one, by disabling the trigger: that is deliberate.
ALTER TABLE devices ADD COLUMN sealed boolean NOT NULL DEFAULT false;
UPDATE devices SET sealed = true
WHERE kind = 'care' OR id IN (SELECT device_ref FROM alerts WHERE kind = 'care' AND device_ref IS NOT NULL);

CREATE FUNCTION seal_care_device() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.sealed := true;
    RETURN NEW;
END $$;
-- WHEN clauses and `UPDATE OF`: ingest's last_seen updates never call the function.
CREATE TRIGGER devices_seal_insert BEFORE INSERT ON devices
    FOR EACH ROW WHEN (NEW.kind = 'care' AND NOT NEW.sealed) EXECUTE FUNCTION seal_care_device();
CREATE TRIGGER devices_seal_update BEFORE UPDATE OF kind, sealed ON devices
    FOR EACH ROW WHEN ((NEW.kind = 'care' OR OLD.sealed) AND NOT NEW.sealed) EXECUTE FUNCTION seal_care_device();

-- Row-level security -------------------------------------------------------------------------------
-- What each role sees (docs/security.md):
--   admin     everything;
--   highways  gully devices that were never care; their readings, events and alerts; gateway alerts.
--             Not 'unassigned' devices: a sensor the network has heard but nobody has registered yet
--             may be a care sensor, so until an admin assigns it, it is admin-only;
--   care      care devices and sealed ones; their readings, events and alerts (and every alert that
--             opened as care, even if its device is gone); gateway alerts.
-- Gateway alerts (kind 'gateway') go to all three: a gateway outage silences both fleets. They name
-- the gateway and how many devices depend on it, nothing about any device.
GRANT SELECT ON devices, readings, events, alerts, alert_log, gateways
    TO lorawatch_admin, lorawatch_highways, lorawatch_care;
-- People's actions on alerts (ack, assign, note, resolve): the columns they change and a log line.
GRANT UPDATE (state, acknowledged_at, acknowledged_by, resolved_at, resolved_by, assignee, updated_at)
    ON alerts TO lorawatch_admin, lorawatch_highways, lorawatch_care;
GRANT INSERT (alert_id, actor, action, from_state, to_state, note, data_time)
    ON alert_log TO lorawatch_admin, lorawatch_highways, lorawatch_care;

ALTER TABLE devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE devices FORCE ROW LEVEL SECURITY;
CREATE POLICY devices_admin ON devices FOR ALL TO lorawatch_admin USING (true) WITH CHECK (true);
CREATE POLICY devices_highways ON devices FOR ALL TO lorawatch_highways
    USING (kind = 'gully' AND NOT sealed) WITH CHECK (kind = 'gully' AND NOT sealed);
CREATE POLICY devices_care ON devices FOR ALL TO lorawatch_care
    USING (kind = 'care' OR sealed) WITH CHECK (kind = 'care' OR sealed);

-- "A row is visible iff its device is": the devices policy applies inside the subquery too.
ALTER TABLE readings ENABLE ROW LEVEL SECURITY;
ALTER TABLE readings FORCE ROW LEVEL SECURITY;
CREATE POLICY readings_admin ON readings FOR SELECT TO lorawatch_admin USING (true);
CREATE POLICY readings_by_device ON readings FOR SELECT TO lorawatch_highways, lorawatch_care
    USING (EXISTS (SELECT 1 FROM devices d WHERE d.id = readings.device_ref));

ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
CREATE POLICY events_admin ON events FOR SELECT TO lorawatch_admin USING (true);
CREATE POLICY events_by_device ON events FOR SELECT TO lorawatch_highways, lorawatch_care
    USING (EXISTS (SELECT 1 FROM devices d WHERE d.id = events.device_ref));

ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY alerts_admin ON alerts FOR ALL TO lorawatch_admin USING (true) WITH CHECK (true);
CREATE POLICY alerts_highways ON alerts FOR ALL TO lorawatch_highways
    USING (kind = 'gateway' OR (kind <> 'care' AND EXISTS (SELECT 1 FROM devices d WHERE d.id = alerts.device_ref)))
    WITH CHECK (kind = 'gateway' OR (kind <> 'care' AND EXISTS (SELECT 1 FROM devices d WHERE d.id = alerts.device_ref)));
CREATE POLICY alerts_care ON alerts FOR ALL TO lorawatch_care
    USING (kind IN ('care', 'gateway') OR EXISTS (SELECT 1 FROM devices d WHERE d.id = alerts.device_ref))
    WITH CHECK (kind IN ('care', 'gateway') OR EXISTS (SELECT 1 FROM devices d WHERE d.id = alerts.device_ref));

ALTER TABLE alert_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_log FORCE ROW LEVEL SECURITY;
CREATE POLICY alert_log_admin ON alert_log FOR ALL TO lorawatch_admin USING (true) WITH CHECK (true);
CREATE POLICY alert_log_by_alert ON alert_log FOR ALL TO lorawatch_highways, lorawatch_care
    USING (EXISTS (SELECT 1 FROM alerts a WHERE a.id = alert_log.alert_id))
    WITH CHECK (EXISTS (SELECT 1 FROM alerts a WHERE a.id = alert_log.alert_id));

-- Nothing else: no API role has any grant on uplinks (raw payloads), outbox (notification payloads),
-- rule_state, changes, dead_letters (raw bytes), simulated_*, silences (care_group matchers),
-- counters, feed_*, uplink_keys or schema_migrations. A table added later is sealed until a
-- migration grants it (tests/integration/api/test_rls.py fails on a readable table without forced
-- RLS that is not on its allowlist). Dead letters, for admin: a migration that grants SELECT on
-- dead_letters to lorawatch_admin alone (no RLS needed: no other role gets a grant).

-- Chunks -------------------------------------------------------------------------------------------
-- A chunk is a table of its own that copies the hypertable's grants but not its policies: a direct
-- SELECT on _timescaledb_internal._hyper_N_M_chunk would bypass RLS, and pg_stats would show the
-- chunk's column statistics. Queries through the hypertable are checked on the hypertable alone, so
-- revoking the API roles' grants from every chunk changes nothing else.
CREATE FUNCTION seal_chunks() RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    c regclass;
    n integer := 0;
BEGIN
    FOR c IN SELECT format('%I.%I', chunk_schema, chunk_name)::regclass FROM timescaledb_information.chunks LOOP
        EXECUTE format('REVOKE ALL ON %s FROM lorawatch_admin, lorawatch_highways, lorawatch_care, lorawatch_api', c);
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
REVOKE EXECUTE ON FUNCTION seal_chunks() FROM PUBLIC;

-- New chunks (made by ingest's inserts) and a GRANT on a hypertable (which TimescaleDB copies to every
-- chunk) are sealed as the command ends, in its transaction.
CREATE FUNCTION seal_new_chunks() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT command_tag, object_type, schema_name, objid FROM pg_event_trigger_ddl_commands() LOOP
        IF r.command_tag = 'GRANT' THEN
            PERFORM public.seal_chunks();
        ELSIF r.object_type = 'table' AND r.schema_name = '_timescaledb_internal' AND r.command_tag <> 'REVOKE' THEN
            EXECUTE format('REVOKE ALL ON %s FROM lorawatch_admin, lorawatch_highways, lorawatch_care, lorawatch_api',
                           r.objid::regclass);
        END IF;
    END LOOP;
END $$;
REVOKE EXECUTE ON FUNCTION seal_new_chunks() FROM PUBLIC;
CREATE EVENT TRIGGER seal_new_chunks ON ddl_command_end EXECUTE FUNCTION seal_new_chunks();
-- Fires in replica mode too (session_replication_role = replica), so no session can skip it.
ALTER EVENT TRIGGER seal_new_chunks ENABLE ALWAYS;
SELECT seal_chunks();

-- Users, sessions, API tokens, login attempts ------------------------------------------------------
CREATE TABLE users (
    id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    role           text NOT NULL CHECK (role IN ('admin', 'highways', 'care')),
    password_hash  text NOT NULL,                 -- argon2id, PHC string format
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    last_login_at  timestamptz
);

-- A session is a random token in an HttpOnly cookie; only its sha256 is stored, so this table read
-- by someone else logs nobody in. The CSRF token is bound to the session (synchronizer token).
CREATE TABLE sessions (
    token_hash  bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id     integer NOT NULL REFERENCES users (id),
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    ip          inet
);
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- API tokens `lw_<id>_<secret>`: the id finds the row, sha256 of the secret is compared (the secret is
-- 256 random bits, so a fast hash is enough and keeps every request cheap). Shown once, never stored.
CREATE TABLE api_tokens (
    id            text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{8}$'),
    secret_hash   bytea NOT NULL CHECK (length(secret_hash) = 32),
    user_id       integer NOT NULL REFERENCES users (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

-- Failed logins by key ('user:<name>', 'ip:<address>'), counted in a window before any password is
-- hashed. In the database, so the limit holds across API processes and restarts.
CREATE TABLE login_attempts (
    key  text NOT NULL,
    at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_key_idx ON login_attempts (key, at);
CREATE INDEX login_attempts_at_idx ON login_attempts (at);

-- The API authenticates as itself, before it switches role: these grants are lorawatch_api's alone, so
-- no request running as a user's role can read a hash, a session or a token.
GRANT SELECT, UPDATE (password_hash, updated_at, last_login_at) ON users TO lorawatch_api;
GRANT SELECT, INSERT, DELETE, UPDATE (revoked_at) ON sessions TO lorawatch_api;
GRANT SELECT, UPDATE (last_used_at) ON api_tokens TO lorawatch_api;
GRANT SELECT, INSERT, DELETE ON login_attempts TO lorawatch_api;

-- The audit log ------------------------------------------------------------------------------------
-- Logins (both outcomes), logouts, token and user changes, and (with the data routes) every view of
-- care data and every action on an alert. Append-only: the API roles may INSERT (not even choose the
-- time or the id) and only admin may read; UPDATE, DELETE and TRUNCATE are refused to everyone by the
-- triggers below (the owner included, short of a superuser disabling them for a retention job).
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,                    -- a username, 'cli:<os user>', or the name tried at login
    actor_role  text,                             -- the actor's role when known
    action      text NOT NULL,                    -- login, login_failed, logout, token_created, ...
    target      text,                             -- what it was done to: 'user:<name>', 'token:<id>', ...
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip          inet
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
GRANT INSERT (actor, actor_role, action, target, detail, ip) ON audit_log
    TO lorawatch_api, lorawatch_admin, lorawatch_highways, lorawatch_care;
GRANT SELECT ON audit_log TO lorawatch_admin;

CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
-- alert_log is the alerts' audit trail: the same (the engine and delivery only ever INSERT into it).
CREATE TRIGGER alert_log_append_only BEFORE UPDATE OR DELETE ON alert_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER alert_log_no_truncate BEFORE TRUNCATE ON alert_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
