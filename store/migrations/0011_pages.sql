-- The dashboard pages (issue 13): a gully page shows its cleanse priority, which is worked out from
-- what the silt and blockage detectors have learned (rule_state; alerts/priority.py). The API roles
-- have no grant on rule_state (it also holds care rules' state), so one narrow SECURITY DEFINER
-- function returns the state of one visible GULLY's rules, and nothing for any other device.

CREATE FUNCTION api_gully_rule_states(p_ref integer)
    RETURNS TABLE (rule text, state jsonb)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT s.rule, s.state
    FROM public.devices d
    JOIN public.rule_state s ON s.subject = 'device:' || d.id
    WHERE d.id = p_ref AND d.kind = 'gully' AND NOT d.sealed AND public.api_device_visible(d.kind, d.sealed)
    ORDER BY s.rule
$$;
REVOKE EXECUTE ON FUNCTION api_gully_rule_states(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_gully_rule_states(integer) TO lorawatch_admin, lorawatch_highways;

-- The device-health page: per visible device, its radio over the day up to its newest uplink (so a
-- silent device shows how it was when last heard): uplinks received, the counter span they cover (for
-- packet loss, within its newest session only, since a rejoin restarts the counter), the newest
-- uplink's RSSI/SNR and the gateways that heard it. Radio columns only, like api_uplink_radio.
CREATE FUNCTION api_device_radio_summary(p_window interval)
    RETURNS TABLE (device_ref integer, uplinks bigint, f_cnt_first bigint, f_cnt_last bigint,
                   rssi_dbm real, snr_db real, gateways text[])
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT d.id, s.uplinks, s.f_cnt_first, s.f_cnt_last, last.rssi_dbm, last.snr_db,
           public.api_rx_gateways(last.rx_metadata)
    FROM public.devices d
    CROSS JOIN LATERAL (
        SELECT u.rssi_dbm, u.snr_db, u.rx_metadata, u.session_key_id FROM public.uplinks u
        WHERE u.device_id = d.device_id AND u.application_id = d.application_id AND NOT u.simulated
          AND u.time >= d.last_seen - p_window
        ORDER BY u.time DESC LIMIT 1
    ) last
    CROSS JOIN LATERAL (
        SELECT count(*) AS uplinks, min(u.f_cnt) AS f_cnt_first, max(u.f_cnt) AS f_cnt_last FROM public.uplinks u
        WHERE u.device_id = d.device_id AND u.application_id = d.application_id AND NOT u.simulated
          AND u.time >= d.last_seen - p_window
          AND u.session_key_id IS NOT DISTINCT FROM last.session_key_id
    ) s
    WHERE d.last_seen IS NOT NULL AND public.api_device_visible(d.kind, d.sealed)
$$;
REVOKE EXECUTE ON FUNCTION api_device_radio_summary(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_device_radio_summary(interval) TO lorawatch_admin, lorawatch_highways, lorawatch_care;
