"""Webhook notifications, the pure part: which webhooks an event goes to, how a delivery is signed,
and when a failed one is tried again. (Sending is the runtime's; the outbox is the store's.)

Each delivery is a JSON POST with the headers ``X-Lightctl-Event``, ``X-Lightctl-Delivery`` (the
outbox row: a retry repeats it, so a receiver can drop duplicates), ``X-Lightctl-Timestamp``
(seconds) and ``X-Lightctl-Signature: sha256=<hex>``, the HMAC-SHA256 with the webhook's secret of
``<timestamp>.<body>``: a receiver checks it, and refuses old timestamps against replays.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import random
from collections.abc import Iterable, Sequence

from lightctl.model.faults import Crew, Delivery, Severity, Webhook, WebhookEvent

SIGNATURE_HEADER = "X-Lightctl-Signature"
TIMESTAMP_HEADER = "X-Lightctl-Timestamp"
DELIVERY_HEADER = "X-Lightctl-Delivery"
EVENT_HEADER = "X-Lightctl-Event"


def crews_covering(district_id: str | None, crews: Sequence[Crew]) -> list[Crew]:
    return [crew for crew in crews if district_id is not None and district_id in crew.districts]


def routes(
    event: WebhookEvent, severity: Severity, crew_ids: Iterable[str], webhooks: Sequence[Webhook]
) -> list[Webhook]:
    """The webhooks an event concerning ``crew_ids`` at ``severity`` goes to: each webhook takes
    its events, its severities (none listed: all) and its crews (none listed: any event, even one
    no crew covers)."""
    concerned = set(crew_ids)
    out = []
    for hook in webhooks:
        if event not in hook.events:
            continue
        if hook.severities and severity not in hook.severities:
            continue
        if hook.crews and not concerned & set(hook.crews):
            continue
        out.append(hook)
    return out


def secret_of(hook: Webhook) -> bytes | None:
    """The webhook's secret (from the config, or its environment variable); None if unset."""
    value = hook.secret if hook.secret is not None else os.environ.get(hook.secret_env or "")
    return value.encode() if value else None


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: int, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, timestamp, body), header)


def retry_delay_s(attempts: int, delivery: Delivery, jitter: float | None = None) -> float:
    """Seconds before the next try after ``attempts`` failed ones: doubling from the first retry,
    capped, with up to 10 % jitter so that a crowd of deliveries does not retry in step."""
    base: float = min(delivery.max_retry_s, delivery.first_retry_s * 2.0 ** max(0, attempts - 1))
    spread = random.random() if jitter is None else jitter
    return base * (1.0 + 0.1 * spread)
