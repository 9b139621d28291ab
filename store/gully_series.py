"""What a gully's silt and blockage detectors have learned (for its page's cleanse priority). Its
chart's buckets come from `store.reading_series.buckets` with the two columns it draws. Runs under
the request's role, like every page query.
"""

from __future__ import annotations

from typing import Any

import psycopg


def rule_states(conn: psycopg.Connection, ref: int) -> dict[str, dict[str, Any]]:
    """What each rule remembers about this gully, by rule name (empty for any other device, or one the
    role cannot see): through the narrow function of migration 0011, rule_state itself being closed."""
    rows = conn.execute("SELECT rule, state FROM public.api_gully_rule_states(%s)", (ref,)).fetchall()
    return {str(rule): state for rule, state in rows}
