-- Detection (issue 11).
--
-- * rule_state.due_at: the earliest data time at which the clock could change this state without new
--   data (a `for` expiring, a device's silence becoming "offline", a welfare spell crossing its
--   threshold). The clock's pass reads only the states that are due, so its cost follows what is
--   happening, not the size of the fleet.
-- * changes.seen_gateways: for each device in `seen_devices`, the gateways (comma-separated ids) that
--   carried its uplinks in the batch, so the engine learns which devices depend on one gateway alone
--   and can tell a gateway outage from a device gone quiet.
ALTER TABLE rule_state ADD COLUMN due_at timestamptz;
CREATE INDEX rule_state_due_idx ON rule_state (due_at) WHERE due_at IS NOT NULL;
ALTER TABLE changes ADD COLUMN seen_gateways text[] NOT NULL DEFAULT '{}';
