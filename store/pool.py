"""The connection pool for long-running readers (the API, the alert worker).

psycopg-pool's `ConnectionPool`, opened explicitly (never on import or construction), so a process
that cannot reach the database fails at start with a clear error instead of at its first request.
"""

from __future__ import annotations

from psycopg_pool import ConnectionPool


def open_pool(
    conninfo: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 10.0,
    check: bool = False,
) -> ConnectionPool:
    """A pool with `min_size` connections open (waits up to `timeout` s for them, else raises).
    `check`: test each connection as it is handed out (a round trip), so a database restart costs
    no request an error."""
    pool = ConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        open=False,
        name="lorawatch",
        timeout=timeout,
        check=ConnectionPool.check_connection if check else None,
    )
    pool.open(wait=True, timeout=timeout)
    return pool
