"""runtime.http: Accept negotiation between NDJSON and Server-Sent Events."""

from __future__ import annotations

import pytest

from protoc_gen_restmon.runtime.gateway.http import wants_event_stream


@pytest.mark.parametrize(
    ("accept", "sse"),
    [
        pytest.param(None, False, id="no-accept"),
        pytest.param("*/*", False, id="anything"),
        pytest.param("text/event-stream", True, id="sse"),
        pytest.param("TEXT/Event-Stream", True, id="case-insensitive"),
        pytest.param("text/event-stream;q=0", False, id="sse-refused"),
        pytest.param("application/json, text/event-stream;q=0.5", True, id="json-is-not-a-stream"),
        pytest.param("application/x-ndjson, text/event-stream;q=0.5", False, id="ndjson-preferred"),
        pytest.param("application/x-ndjson;q=0.4, text/event-stream;q=0.5", True, id="sse-wins"),
        pytest.param("text/event-stream;q=abc", False, id="bad-quality-is-zero"),
    ],
)
def test_event_stream_is_chosen_by_quality(accept: str | None, sse: bool) -> None:
    assert wants_event_stream(accept) is sse
