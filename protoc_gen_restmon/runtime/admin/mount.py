"""One ASGI app for the gateway and the admin API: admin paths to the admin app, the rest to
the gateway; lifespan events go to both."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from protoc_gen_restmon.runtime.gateway.http import App, Message, Receive, Scope, Send, raw_path

__all__ = ["ADMIN_PREFIXES", "with_admin"]

ADMIN_PREFIXES = ("/cfg/grpc/", "/api/grpc/", "/metrics")


def with_admin(gateway: App, admin: App, prefixes: Sequence[str] = ADMIN_PREFIXES) -> App:
    """An app sending paths under `prefixes` (below `root_path`) to `admin`, others to
    `gateway`. `/metrics` matches `/metrics` and `/metrics/` only, not `/metricsfoo`."""

    def is_admin(path: str) -> bool:
        return any(
            path.startswith(p) if p.endswith("/") else path in (p, f"{p}/") for p in prefixes
        )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan_both((gateway, admin), scope, receive, send)
        elif scope["type"] in ("http", "websocket") and is_admin(raw_path(scope)):
            await admin(scope, receive, send)
        else:
            await gateway(scope, receive, send)

    return app


async def _lifespan_both(apps: Sequence[App], scope: Scope, receive: Receive, send: Send) -> None:
    """Each app runs its own lifespan protocol; the server gets one answer per event: complete
    when every app completed (or does not speak lifespan), failed when one failed."""
    inboxes = [asyncio.Queue[Message]() for _ in apps]
    outboxes = [asyncio.Queue[Message | None]() for _ in apps]
    tasks = [
        asyncio.ensure_future(_run(app, scope, inbox, outbox))
        for app, inbox, outbox in zip(apps, inboxes, outboxes, strict=True)
    ]
    try:
        while True:
            event = await receive()
            for inbox in inboxes:
                inbox.put_nowait(event)
            answers = [await outbox.get() for outbox in outboxes]
            failed = [a for a in answers if a is not None and a["type"].endswith(".failed")]
            phase = event["type"]  # lifespan.startup | lifespan.shutdown
            if failed:
                await send({"type": f"{phase}.failed", "message": failed[0].get("message", "")})
                return
            await send({"type": f"{phase}.complete"})
            if phase == "lifespan.shutdown":
                return
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _run(
    app: App, scope: Scope, inbox: asyncio.Queue[Message], outbox: asyncio.Queue[Message | None]
) -> None:
    """Run one app's lifespan; once it returns (or raises), every later event is answered
    with None ("nothing to do")."""

    async def send(message: Message) -> None:
        outbox.put_nowait(message)

    # An app without lifespan support may raise on the scope: it then has nothing to do.
    with contextlib.suppress(Exception):
        await app(scope, inbox.get, send)
    while True:
        await inbox.get()
        outbox.put_nowait(None)
