-- The devices, readings and gateways routes (issue 12 part B). docs/api.md describes the routes;
-- docs/security.md the roles. Two things here:
--
-- * Admin writes the registry through the API: INSERT, UPDATE and DELETE on `devices`, for admin only
--   (a unique-key clash would tell highways or care that a hidden device exists). Column grants: the
--   registry's columns, never `sealed`, `first_seen`, `last_seen` or `id`, which ingest and the seal
--   triggers own. DELETE is a table grant, which is also what `LOCK TABLE ... SHARE ROW EXCLUSIVE` (the
--   registry import's lock, store/registry.py) needs.
--
-- * Radio health and gateways need four columns of `uplinks` (time, f_cnt, rssi_dbm, snr_db, and the
--   gateway ids in rx_metadata). The API roles keep no grant on `uplinks` (it holds raw payloads) and
--   no view of it is readable (a view owned by the superuser owner would bypass row-level security).
--   Instead three narrow SECURITY DEFINER functions return only those columns, only for devices the
--   caller's role may see. Inside a SECURITY DEFINER function `current_user` is the owner, but the
--   `role` setting is still the `SET LOCAL ROLE` of the request (docs/security.md): `api_device_visible`
--   judges a device by it, with the same predicates as the `devices` policies of migration 0007, and
--   fails closed (false) for any other role. tests/integration/api/test_gateways_api.py checks that it
--   agrees with the policies for every role and every kind/seal.

GRANT INSERT (device_id, application_id, source, kind, brand_id, model_id, name, latitude, longitude,
              sensor_height_mm, outlet_invert_mm, care_room, care_group)
    ON devices TO lorawatch_admin;
GRANT UPDATE (application_id, kind, brand_id, model_id, name, latitude, longitude, sensor_height_mm,
              outlet_invert_mm, care_room, care_group)
    ON devices TO lorawatch_admin;
GRANT DELETE ON devices TO lorawatch_admin;

-- The devices policies of 0007, by the request's role. Keep the two in step (a test does).
CREATE FUNCTION api_device_visible(p_kind text, p_sealed boolean) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE current_setting('role')
        WHEN 'lorawatch_admin' THEN true
        WHEN 'lorawatch_highways' THEN p_kind = 'gully' AND NOT p_sealed
        WHEN 'lorawatch_care' THEN p_kind = 'care' OR p_sealed
        ELSE false
    END
$$;
REVOKE EXECUTE ON FUNCTION api_device_visible(text, boolean) FROM PUBLIC;

-- The gateway ids of one uplink's rx_metadata: TTS `gateway_ids.gateway_id`, ChirpStack `gatewayId`
-- (the ids ingest puts in the change feed's seen_gateways, store/writer.py).
CREATE FUNCTION api_rx_gateways(p_rx jsonb) RETURNS text[]
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(array_agg(DISTINCT g ORDER BY g), '{}')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_rx) = 'array' THEN p_rx ELSE '[]' END) e,
         LATERAL (SELECT coalesce(e -> 'gateway_ids' ->> 'gateway_id', e ->> 'gatewayId') AS g) x
    WHERE g IS NOT NULL AND g <> ''
$$;
REVOKE EXECUTE ON FUNCTION api_rx_gateways(jsonb) FROM PUBLIC;

-- One visible device's uplinks in [p_since, p_until), oldest first: radio metadata only (no payload, no
-- keys). `new_session` is true where the session key changed from the previous uplink (a rejoin,
-- which restarts f_cnt). Simulated uplinks are left out: they never reached the radio.
CREATE FUNCTION api_uplink_radio(p_ref integer, p_since timestamptz, p_until timestamptz)
    RETURNS TABLE ("time" timestamptz, f_cnt bigint, new_session boolean, rssi_dbm real, snr_db real,
                   gateways text[])
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT u.time, u.f_cnt,
           u.session_key_id IS DISTINCT FROM lag(u.session_key_id) OVER w AND lag(u.time) OVER w IS NOT NULL,
           u.rssi_dbm, u.snr_db, public.api_rx_gateways(u.rx_metadata)
    FROM public.devices d
    JOIN public.uplinks u ON u.device_id = d.device_id AND u.application_id = d.application_id
    WHERE d.id = p_ref AND public.api_device_visible(d.kind, d.sealed)
      AND u.time >= p_since AND u.time < p_until AND NOT u.simulated
    WINDOW w AS (ORDER BY u.time, u.f_cnt)
    ORDER BY u.time, u.f_cnt
$$;

-- Per gateway id: how many visible devices it heard since p_since, and its newest uplink among theirs.
-- Counted here, for the caller's role, so a gateway's numbers never include a device the role cannot see.
CREATE FUNCTION api_gateway_activity(p_since timestamptz)
    RETURNS TABLE (gateway_id text, devices bigint, uplinks bigint, last_heard timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT g.gateway_id, count(DISTINCT d.id), count(*), max(u.time)
    FROM public.devices d
    CROSS JOIN LATERAL (
        SELECT u.time, u.rx_metadata FROM public.uplinks u
        WHERE u.device_id = d.device_id AND u.application_id = d.application_id
          AND u.time >= p_since AND NOT u.simulated
    ) u
    CROSS JOIN LATERAL unnest(public.api_rx_gateways(u.rx_metadata)) AS g (gateway_id)
    WHERE public.api_device_visible(d.kind, d.sealed)
    GROUP BY g.gateway_id
$$;

-- The visible devices whose newest uplink was heard by this gateway (among any others that heard it).
CREATE FUNCTION api_devices_last_heard_via(p_gateway text)
    RETURNS SETOF integer
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT d.id
    FROM public.devices d
    CROSS JOIN LATERAL (
        SELECT u.rx_metadata FROM public.uplinks u
        WHERE u.device_id = d.device_id AND u.application_id = d.application_id AND NOT u.simulated
          AND u.time >= d.last_seen - interval '1 day'  -- an index range, not every chunk
        ORDER BY u.time DESC LIMIT 1
    ) last
    WHERE d.last_seen IS NOT NULL AND public.api_device_visible(d.kind, d.sealed)
      AND p_gateway = ANY (public.api_rx_gateways(last.rx_metadata))
$$;

REVOKE EXECUTE ON FUNCTION api_uplink_radio(integer, timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION api_gateway_activity(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION api_devices_last_heard_via(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_uplink_radio(integer, timestamptz, timestamptz),
                          api_gateway_activity(timestamptz),
                          api_devices_last_heard_via(text)
    TO lorawatch_admin, lorawatch_highways, lorawatch_care;

-- A device that was ever heard keeps its row. Its uplinks are found by name (device_id and
-- application_id, as above), so a device registered anew under the same name would inherit them, and
-- a sealed (care) device's seal would go with its row: highways would then see a care sensor's
-- transmission times and signal. The API's DELETE asks first (409 device_has_history); the trigger
-- holds the API roles to it whatever they send. (The owner, e.g. a test, may still delete by hand.)
CREATE FUNCTION api_device_heard(p_ref integer) RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT EXISTS (
        SELECT 1 FROM public.devices d
        JOIN public.uplinks u ON u.device_id = d.device_id AND u.application_id = d.application_id
        WHERE d.id = p_ref
    )
$$;
REVOKE EXECUTE ON FUNCTION api_device_heard(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_device_heard(integer) TO lorawatch_admin;

CREATE FUNCTION devices_keep_heard() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF current_user IN ('lorawatch_admin', 'lorawatch_highways', 'lorawatch_care')
       AND public.api_device_heard(OLD.id) THEN
        RAISE EXCEPTION 'device % was heard (it has uplinks): it is kept', OLD.device_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER devices_keep_heard BEFORE DELETE ON devices FOR EACH ROW EXECUTE FUNCTION devices_keep_heard();
