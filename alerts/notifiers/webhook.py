"""The webhook channel: an HTTP POST of the notification as JSON, signed with HMAC-SHA256.

The request:

- body: the message body as compact JSON with sorted keys (so a repeat of the same row is
  byte-for-byte the same request), exactly the bytes that were signed;
- `Content-Type: application/json`;
- `X-Lorawatch-Signature: sha256=<hex HMAC-SHA256 of the body>` when the route has a secret (a
  receiver recomputes it over the raw body it read, before parsing, and compares in constant time:
  `verify()` below does that);
- `X-Lorawatch-Idempotency-Key`: the outbox row's key, also `idempotency_key` in the body. A crash
  between "the receiver answered 2xx" and "the outbox row is marked sent" makes one repeat
  unavoidable; a receiver that keeps the keys it has seen drops it;
- `X-Lorawatch-Event`: opened, repeat, escalated, acknowledged or resolved.

The answer decides what happens next:

- 2xx: sent.
- 408, 429, 5xx, a timeout, a refused or reset connection, a TLS or DNS failure: retried with
  backoff (a `Retry-After` in seconds is honoured).
- any other 4xx: dead at once. The same request will be refused again, so retrying would only delay
  the dead state an operator sees (fix the receiver or the route, then requeue).
- 3xx: dead at once. Redirects are not followed (urllib would re-send the POST as a GET without its
  body); configure the final URL.

Plain urllib (httpx is only a test dependency here). No proxy is used, whatever the environment says:
the process reads no environment of its own, and a webhook receiver is normally reachable directly.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import Message as HeaderMessage
from typing import Any

import orjson

from alerts.notifiers.base import Message, PermanentFailure, TemporaryFailure

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Lorawatch-Signature"
IDEMPOTENCY_HEADER = "X-Lorawatch-Idempotency-Key"
EVENT_HEADER = "X-Lorawatch-Event"
#: Answers worth retrying although they are 4xx: the receiver timed out reading us, or asks us to slow down.
RETRYABLE_4XX = frozenset({408, 429})


def encode(body: Mapping[str, Any]) -> bytes:
    """The request body: compact JSON, keys sorted, so the same payload always gives the same bytes."""
    return orjson.dumps(dict(body), option=orjson.OPT_SORT_KEYS)


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for `body`: `sha256=` and the hex HMAC-SHA256 keyed by `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """What a receiver does: True when `header` is the signature of exactly these body bytes."""
    return header is not None and hmac.compare_digest(sign(body, secret), header.strip())


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib re-sends a redirected POST as a GET without the body."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: HeaderMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


class WebhookNotifier:
    """POSTs messages to their outbox `target` URL.

    `secret` signs every route's requests, unless `route_secrets` names the route: then its value
    (None = unsigned) is used. The composition root builds both from the environment and the rules
    file's routes (`secret_env`); secrets are never stored in the outbox."""

    channel = "webhook"

    def __init__(
        self,
        *,
        secret: str | None = None,
        route_secrets: Mapping[str, str | None] | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "lorawatch",
    ) -> None:
        self._secret = secret
        self._route_secrets = dict(route_secrets or {})
        self.timeout = timeout
        self.user_agent = user_agent
        context = ssl_context or ssl.create_default_context()
        # build_opener adds the defaults we do not replace; an empty ProxyHandler disables proxies.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _NoRedirects(), urllib.request.HTTPSHandler(context=context)
        )

    def __repr__(self) -> str:  # never show the secrets
        return f"WebhookNotifier(routes={sorted(self._route_secrets)}, timeout={self.timeout})"

    def secret_for(self, route: str) -> str | None:
        return self._route_secrets.get(route, self._secret)

    def request(self, message: Message) -> urllib.request.Request:
        """The HTTP request for `message` (exposed so tests and tools can see exactly what is sent)."""
        if not message.target.startswith(("http://", "https://")):
            raise PermanentFailure(f"webhook target is not an http(s) URL: {message.target[:80]!r}")
        body = encode(message.body)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            IDEMPOTENCY_HEADER: message.idempotency_key,
            EVENT_HEADER: message.event,
        }
        secret = self.secret_for(message.route)
        if secret:
            headers[SIGNATURE_HEADER] = sign(body, secret)
        return urllib.request.Request(message.target, data=body, headers=headers, method="POST")  # noqa: S310 (scheme checked above)

    def send(self, message: Message) -> str | None:
        request = self.request(message)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(65536)
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            raise _http_failure(exc) from None
        except urllib.error.URLError as exc:
            raise TemporaryFailure(f"webhook unreachable: {_reason(exc.reason)}") from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise TemporaryFailure(f"webhook failed: {_reason(exc)}") from None
        if not 200 <= status < 300:  # 1xx or another oddity urllib did not raise for
            raise TemporaryFailure(f"webhook answered HTTP {status}")
        return None


def _http_failure(exc: urllib.error.HTTPError) -> PermanentFailure | TemporaryFailure:
    code = exc.code
    try:
        snippet = " ".join(exc.read(200).decode("utf-8", "replace").split())
    except Exception:  # the body is only a hint for the operator
        snippet = ""
    finally:
        exc.close()
    reason = f"webhook answered HTTP {code} {exc.reason}" + (f": {snippet}" if snippet else "")
    if 300 <= code < 400:
        location = exc.headers.get("Location", "") if exc.headers else ""
        return PermanentFailure(f"{reason} (redirects are not followed; configure the final URL {location})".strip())
    if code in RETRYABLE_4XX or code >= 500:
        return TemporaryFailure(reason, retry_after=_retry_after(exc.headers))
    return PermanentFailure(reason)


def _retry_after(headers: HeaderMessage | None) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:  # an HTTP date: fall back to our own backoff
        return None


def _reason(exc: object) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if isinstance(exc, BaseException) else text
