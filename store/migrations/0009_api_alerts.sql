-- The alert routes of the API (issue 12 part B): silences, dead letters, and the notices people's
-- actions hand to the alert worker. docs/security.md and docs/api.md explain the design.
--
-- * Dead letters: SELECT for lorawatch_admin alone. No row-level security: no other role has a grant
--   (the catalog test allowlists the table for admin only).
-- * Silences: readable and creatable by the three roles under forced row-level security. What a silence
--   can hold back is decided by its matchers, so the policies read the matchers: highways may see and
--   make only silences pinned to `kind` gully or gateway with no `care_group`, care only those pinned
--   to `kind` care or gateway; a `device_id` matcher must name a device the role can see. A silence
--   without a `kind` matcher (the CLI's, an admin's) could hold back either fleet's alerts, so only
--   admin sees it.
-- * Notices: the API roles have no grant on `outbox` (notification payloads) and must not get one. A
--   person resolving an alert someone was told of owes those people a "resolved" notice; the API hands
--   it over through hand_over_alert_notice() into `alert_notices`, and the alert worker turns it into
--   the same outbox rows the CLI's resolve writes (alerts/engine.py, Engine.send_notices).

GRANT SELECT ON dead_letters TO lorawatch_admin;

-- Silences -----------------------------------------------------------------------------------------
GRANT SELECT, INSERT (matchers, starts_at, ends_at, created_by, comment), UPDATE (expired_at)
    ON silences TO lorawatch_admin, lorawatch_highways, lorawatch_care;
ALTER TABLE silences ENABLE ROW LEVEL SECURITY;
ALTER TABLE silences FORCE ROW LEVEL SECURITY;
CREATE POLICY silences_admin ON silences FOR ALL TO lorawatch_admin USING (true) WITH CHECK (true);
-- The devices subquery runs under the role's own devices policy: a sealed or care device is not found.
CREATE POLICY silences_highways ON silences FOR ALL TO lorawatch_highways
    USING (matchers ->> 'kind' IN ('gully', 'gateway') AND NOT matchers ? 'care_group'
           AND (NOT matchers ? 'device_id'
                OR EXISTS (SELECT 1 FROM devices d WHERE d.device_id = silences.matchers ->> 'device_id')))
    WITH CHECK (matchers ->> 'kind' IN ('gully', 'gateway') AND NOT matchers ? 'care_group'
           AND (NOT matchers ? 'device_id'
                OR EXISTS (SELECT 1 FROM devices d WHERE d.device_id = silences.matchers ->> 'device_id')));
CREATE POLICY silences_care ON silences FOR ALL TO lorawatch_care
    USING (matchers ->> 'kind' IN ('care', 'gateway')
           AND (NOT matchers ? 'device_id'
                OR EXISTS (SELECT 1 FROM devices d WHERE d.device_id = silences.matchers ->> 'device_id')))
    WITH CHECK (matchers ->> 'kind' IN ('care', 'gateway')
           AND (NOT matchers ? 'device_id'
                OR EXISTS (SELECT 1 FROM devices d WHERE d.device_id = silences.matchers ->> 'device_id')));

-- Notices handed to the alert worker ---------------------------------------------------------------
-- One row per (alert, event) waiting for the worker, which deletes it in the transaction that writes
-- the outbox rows (so a notice is turned into notifications once, and survives a worker that is down
-- until one starts). No foreign key: the queue must never stand in the way of what is done to alerts
-- (the test fixture truncates alerts; a retention job might delete old ones); a notice whose alert is
-- gone is dropped. No grant to any API role: they write it through the function below only.
CREATE TABLE alert_notices (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id   bigint NOT NULL,
    event      text NOT NULL CHECK (event IN ('resolved')),
    queued_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (alert_id, event)
);

-- Narrow by construction: fixed SQL, one event, and only for an alert that was resolved in the
-- caller's own transaction (`updated_at = now()`, the transaction's start time, which the update the
-- caller's role was allowed to make has just written) and that somebody was told of. So a role can
-- queue a notice only for an alert its row-level security let it resolve, and learns nothing either
-- way (no result, no error for an alert it cannot see).
CREATE FUNCTION hand_over_alert_notice(p_alert_id bigint, p_event text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_event IS DISTINCT FROM 'resolved' THEN
        RAISE EXCEPTION 'unknown alert notice %', p_event USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO public.alert_notices (alert_id, event)
    SELECT a.id, p_event FROM public.alerts a
    WHERE a.id = p_alert_id AND a.state = 'resolved' AND a.updated_at = now()
      AND a.notifications > 0 AND NOT a.simulated
    ON CONFLICT (alert_id, event) DO NOTHING;
END $$;
REVOKE EXECUTE ON FUNCTION hand_over_alert_notice(bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION hand_over_alert_notice(bigint, text) TO lorawatch_admin, lorawatch_highways, lorawatch_care;
