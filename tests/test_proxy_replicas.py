"""What grpcio's C-core gives proxy mode (issue 15, item 2): several upstream replicas behind one
gRPC target with round_robin, retries of idempotent methods (off by default), and channel
arguments of one's own. Real grpclib servers: in threads, or as processes to kill."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from examples.bookstore import make_service
from protoc_gen_restmon.runtime.gateway.app import Gateway, GatewayOptions
from protoc_gen_restmon.runtime.gateway.upstream import (
    RetryPolicy,
    RpcMethod,
    UpstreamOptions,
    idempotent,
)
from protoc_gen_restmon.runtime.specs import Cardinality, MessageRef, MethodSpec
from tests.support.proxy_fixtures import GRPCIO_ONLY, proxy_call, running_upstream
from tests.support.servers import uvicorn_server
from tests.support.upstream_process import UpstreamProcess

# Replicas, retries and channel options are grpcio's channel's (C-core's) features.
pytestmark = GRPCIO_ONLY

JSON = [("content-type", "application/json")]


def gateway(pb: ModuleType, target: str, **options: Any) -> Gateway:
    upstream = UpstreamOptions(**options)
    return Gateway(upstream=target, packages=[pb], options=GatewayOptions(upstream=upstream))


def arguments(gateway: Gateway) -> dict[str, Any]:
    return dict(gateway.backend.upstream.arguments)  # type: ignore[attr-defined]


# --- The service config: load balancing, and retries for idempotent methods only ---


def test_retries_are_off_by_default(bookstore_pb: ModuleType) -> None:
    channel = arguments(gateway(bookstore_pb, "127.0.0.1:1"))
    assert channel["grpc.enable_retries"] == 0
    assert json.loads(channel["grpc.service_config"]) == {
        "loadBalancingConfig": [{"round_robin": {}}]
    }


def test_the_retry_policy_names_the_idempotent_methods_only(bookstore_pb: ModuleType) -> None:
    policy = RetryPolicy(max_attempts=4, initial_backoff=0.05)
    channel = arguments(gateway(bookstore_pb, "127.0.0.1:1", retry=policy))
    assert channel["grpc.enable_retries"] == 1
    [method_config] = json.loads(channel["grpc.service_config"])["methodConfig"]
    names = {entry["method"] for entry in method_config["name"]}
    # Every binding a GET (WatchShelf streams): retried; POST, PATCH, DELETE, client and bidi
    # streams, and a method without a binding are not.
    assert {"GetShelf", "ListShelves", "GetBook", "WatchShelf", "ListGenres"} <= names
    assert not names & {"CreateShelf", "UpdateShelf", "DeleteShelf", "CheckoutBook"}
    assert not names & {"ImportBooks", "SyncInventory", "GetStoreStats"}
    assert method_config["retryPolicy"] == {
        "maxAttempts": 4,
        "initialBackoff": "0.05s",
        "maxBackoff": "1s",
        "backoffMultiplier": 2.0,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param({"max_attempts": 1}, id="one-attempt"),
        pytest.param({"max_attempts": 6}, id="beyond-c-core-cap"),
        pytest.param({"status_codes": ("OK",)}, id="ok-is-no-failure"),
        pytest.param({"status_codes": ("BROKEN",)}, id="unknown-code"),
        pytest.param({"initial_backoff": 0.0}, id="no-backoff"),
    ],
)
def test_retry_policy_refuses_what_grpc_would_not_take(policy: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**policy)


def test_load_balancing_is_checked() -> None:
    with pytest.raises(ValueError, match="load_balancing"):
        UpstreamOptions(load_balancing="random")


class Unavailable:
    """GetShelf fails UNAVAILABLE `failures` times, then answers; CreateShelf always fails."""

    def __init__(self, pb: ModuleType, failures: int) -> None:
        base: type = type(make_service(pb))
        outer = self
        self.calls: Counter[str] = Counter()
        self.failures = failures

        class Service(base):  # type: ignore[misc]
            async def get_shelf(self, request: Any) -> Any:
                outer.calls["GetShelf"] += 1
                if outer.calls["GetShelf"] <= outer.failures:
                    raise GRPCError(Status.UNAVAILABLE, "warming up")
                return await super().get_shelf(request)

            async def create_shelf(self, request: Any) -> Any:
                outer.calls["CreateShelf"] += 1
                raise GRPCError(Status.UNAVAILABLE, "warming up")

        self.service = Service()


@pytest.mark.parametrize(("retry", "status", "attempts"), [(None, 503, 1), (3, 200, 3)])
def test_a_get_failing_unavailable_is_retried_only_when_asked(
    bookstore_pb: ModuleType, retry: int | None, status: int, attempts: int
) -> None:
    flaky = Unavailable(bookstore_pb, failures=2)
    policy = None if retry is None else RetryPolicy(max_attempts=retry, initial_backoff=0.01)
    with running_upstream(flaky.service) as upstream:
        reply = proxy_call(
            gateway(bookstore_pb, upstream.address, retry=policy), "GET", "/v1/shelves/fiction"
        )
    assert reply.status == status, reply.body
    assert flaky.calls["GetShelf"] == attempts


def test_a_post_is_never_retried(bookstore_pb: ModuleType) -> None:
    flaky = Unavailable(bookstore_pb, failures=0)
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.01)
    with running_upstream(flaky.service) as upstream:
        served = gateway(bookstore_pb, upstream.address, retry=policy)
        reply = proxy_call(served, "POST", "/v1/shelves", headers=JSON, body=b"{}")
    assert (reply.status, reply.json()["message"]) == (503, "warming up")
    assert flaky.calls["CreateShelf"] == 1


# --- Channel arguments of one's own ---


def test_channel_options_override_the_gateways_own(bookstore_pb: ModuleType) -> None:
    """`grpc.max_receive_message_length` (the gateway sets none): a response larger than the
    limit is RESOURCE_EXHAUSTED, HTTP 429."""
    with running_upstream(make_service(bookstore_pb)) as upstream:
        small = (("grpc.max_receive_message_length", 8),)
        reply = proxy_call(
            gateway(bookstore_pb, upstream.address, channel_options=small),
            "GET",
            "/v1/shelves/fiction",
        )
        assert (reply.status, reply.json()["code"]) == (429, 8), reply.body
        reply = proxy_call(gateway(bookstore_pb, upstream.address), "GET", "/v1/shelves/fiction")
        assert reply.status == 200


def test_a_dns_target_reaches_the_address_that_listens(bookstore_pb: ModuleType) -> None:
    """`dns:///localhost:P` resolves to ::1 and 127.0.0.1; the server listens on the second
    only: round_robin sends every call to the address that is ready."""
    with running_upstream(make_service(bookstore_pb)) as upstream:
        served = gateway(bookstore_pb, f"dns:///localhost:{upstream.port}")
        for _ in range(3):
            assert proxy_call(served, "GET", "/v1/shelves/fiction").status == 200


# --- Three replicas as processes: the load spreads; one killed, the others serve ---


@pytest.fixture(name="replicas")
def fixture_replicas(bookstore_pb: ModuleType, tmp_path: Path) -> Iterator[list[UpstreamProcess]]:
    replicas = [UpstreamProcess(bookstore_pb, tmp_path / f"events-{i}.log") for i in range(3)]
    try:
        for replica in replicas:
            replica.start()
        yield replicas
    finally:
        for replica in replicas:
            replica.stop()


def served_by(replicas: list[UpstreamProcess], prefix: str) -> list[int]:
    """How many GetShelf calls with a request id starting with `prefix` each replica began."""
    return [
        sum(1 for line in r.lines() if line.startswith(f"start GetShelf {prefix}"))
        for r in replicas
    ]


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_round_robin_spreads_calls_and_survives_a_killed_replica(
    bookstore_pb: ModuleType, replicas: list[UpstreamProcess]
) -> None:
    target = "ipv4:" + ",".join(replica.address for replica in replicas)
    with uvicorn_server(gateway(bookstore_pb, target)) as url, httpx.Client(base_url=url) as http:

        def get(request_id: str) -> int:
            headers = {"x-request-id": request_id}
            return http.get("/v1/shelves/fiction", headers=headers, timeout=10).status_code

        assert [get(f"before-{i}") for i in range(30)] == [200] * 30
        spread = served_by(replicas, "before-")
        assert sum(spread) == 30 and min(spread) >= 5, spread  # round_robin: 10 each, ideally
        replicas[0].kill()
        assert [get(f"after-{i}") for i in range(30)] == [200] * 30
        after = served_by(replicas, "after-")
        assert after[0] == 0 and min(after[1:]) >= 5, after


def idempotency_test_methods() -> dict[str, RpcMethod]:
    """Methods of a service built here from a descriptor: each `POST` binding, one method per
    `idempotency_level`, and a client stream that says it is IDEMPOTENT."""
    file = descriptor_pb2.FileDescriptorProto(name="restmon_test_idem.proto", package="idem")
    file.message_type.add(name="M")
    service = file.service.add(name="S")
    levels = {"Unknown": 0, "NoSideEffects": 1, "Idempotent": 2, "Stream": 2}
    for name, level in levels.items():
        method = service.method.add(name=name, input_type=".idem.M", output_type=".idem.M")
        method.options.idempotency_level = level  # type: ignore[assignment]
        method.client_streaming = name == "Stream"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    message = message_factory.GetMessageClass(pool.FindMessageTypeByName("idem.M"))
    ref = MessageRef("idem.M", ".", "M")
    methods = {}
    for name in levels:
        cardinality = Cardinality.STREAM_UNARY if name == "Stream" else Cardinality.UNARY_UNARY
        spec = MethodSpec(name, f"/idem.S/{name}", cardinality, ref, ref, (f"POST /v1/{name}",))
        methods[name] = RpcMethod(spec, message, message)
    return methods


def test_idempotency_level_makes_a_post_method_idempotent() -> None:
    methods = idempotency_test_methods()
    assert {name for name, method in methods.items() if idempotent(method)} == {
        "NoSideEffects",
        "Idempotent",
    }
