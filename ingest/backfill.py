"""Backfill from The Things Stack's Storage Integration after a (re)connect.

TTS's MQTT is QoS 0 with no session: whatever it published while we were away is gone from MQTT. Its
Storage Integration keeps uplinks (24 h on TTN, 30 days on TTS Cloud), so after each connect we fetch
the window since the newest uplink we hold and feed it through the normal pipeline; the natural key
drops what we already have.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

#: Fetch a little before the newest stored uplink: storage writes are batched and clocks differ.
OVERLAP = timedelta(minutes=2)
PAGE_LIMIT = 1000


class BackfillError(RuntimeError):
    """The Storage API could not be read; the ingester logs it and carries on with live traffic."""


@dataclass(frozen=True, slots=True)
class StorageApi:
    """A TTS Storage Integration endpoint: base URL (e.g. https://eu1.cloud.thethings.network) and key."""

    base_url: str
    api_key: str
    timeout_s: float = 30.0

    def uplinks(self, application_id: str, after: datetime | None) -> Iterator[tuple[str, bytes]]:
        """(topic, body) for every stored uplink of the application after `after`, oldest first.

        Pages of PAGE_LIMIT are followed by asking again from the last `received_at` seen.
        """
        since = (after - OVERLAP).isoformat().replace("+00:00", "Z") if after else None
        while True:
            page = list(self._page(application_id, since))
            yield from ((topic, body) for topic, body, _ in page)
            if len(page) < PAGE_LIMIT or page[-1][2] in (None, since):
                return
            since = page[-1][2]

    def _page(self, application_id: str, since: str | None) -> Iterator[tuple[str, bytes, str | None]]:
        params: dict[str, str] = {"order": "received_at", "limit": str(PAGE_LIMIT)}
        if since is not None:
            params["after"] = since
        app = urllib.parse.quote(application_id, safe="")
        url = (
            f"{self.base_url.rstrip('/')}/api/v3/as/applications/{app}/packages/storage/uplink_message?"
            + urllib.parse.urlencode(params)
        )
        headers = {"Authorization": f"Bearer {self.api_key}", "Accept": "text/event-stream"}
        req = urllib.request.Request(url, headers=headers)  # noqa: S310 (the URL comes from settings)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                for line in resp:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        result = json.loads(line)["result"]
                        device = result["end_device_ids"]["device_id"]
                    except (ValueError, KeyError, TypeError) as exc:
                        msg = f"unexpected line from the Storage API: {line[:200]!r}"
                        raise BackfillError(msg) from exc
                    received = result.get("received_at")
                    yield (
                        f"v3/{application_id}/devices/{device}/up",
                        json.dumps(result).encode(),
                        received if isinstance(received, str) else None,
                    )
        except OSError as exc:  # URLError and HTTPError are OSErrors
            msg = f"Storage API request failed: {exc}"
            raise BackfillError(msg) from exc


def applications_from(topics: list[str], username: str | None) -> list[str]:
    """The TTS application ids to backfill: concrete ones in the topic filters, else the MQTT username."""
    apps = []
    for topic in topics:
        parts = topic.split("/")
        if len(parts) > 1 and parts[0] == "v3" and parts[1] not in {"+", "#"}:
            apps.append(parts[1].split("@", 1)[0])
    if not apps and username:
        apps.append(username.split("@", 1)[0])
    return sorted(set(apps))


def run_backfill(
    api: StorageApi, applications: list[str], after: datetime | None, submit: Callable[[str, bytes], bool]
) -> int:
    """Fetch and submit every stored uplink after `after`; returns how many were accepted.

    `submit` returns False when the ingester is stopping: the backfill ends there (the next start
    backfills again from the newest stored uplink), and only what was accepted is counted."""
    count = 0
    for app in applications:
        for topic, body in api.uplinks(app, after):
            if not submit(topic, body):
                log.info("backfill_stopped", extra={"applications": applications, "uplinks": count})
                return count
            count += 1
    log.info("backfill_done", extra={"applications": applications, "uplinks": count})
    return count
