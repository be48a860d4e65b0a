"""Google's own generated REST clients against the gateway (issue 13, "How it must be proven").

`google-cloud-tasks` and `google-cloud-secret-manager` (gapic-generator-python's clients, built from
the same `google.api.http` annotations) with `transport="rest"`, talking over real HTTP to the
gateway serving our plugin's output for the corpus protos, in front of in-memory fakes of the two
services (tests/support/cloud_fakes/): in process, and in proxy mode with the fakes on a grpclib
server on loopback. Default gateway options except Google's error format. Each call is one a user
of those libraries makes; the tests check what the client returns or raises, and what the
service received.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import secretmanager_v1, tasks_v2
from google.cloud.location import locations_pb2  # type: ignore[import-untyped]
from google.protobuf import field_mask_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.cloud_fakes.cloud_tasks import make_cloud_tasks
from tests.support.cloud_fakes.locations import make_locations
from tests.support.cloud_fakes.secret_manager import crc32c, make_secret_manager
from tests.support.google_apis import CORPUS, GeneratedApi, generated_api
from tests.support.google_clients import MODES, OPTIONS, client_options, served

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not CORPUS.is_dir(), reason="googleapis corpus absent: run `make corpus`"),
    pytest.mark.timeout(120),
]

# The service YAMLs as googleapis publishes them (google/cloud/tasks/v2/cloudtasks_v2.yaml,
# google/cloud/secretmanager/v1/secretmanager_v1.yaml); the npm corpus ships no YAML. Their
# `http:` rules put the Locations mixin under each API's own version prefix.
CLOUDTASKS_V2_YAML = """\
type: google.api.Service
config_version: 3
name: cloudtasks.googleapis.com
title: Cloud Tasks API

apis:
- name: google.cloud.location.Locations
- name: google.cloud.tasks.v2.CloudTasks

documentation:
  summary: Manages the execution of large numbers of distributed requests.
  overview: |-
    Cloud Tasks manages the execution of large numbers of distributed
    requests.

    For more information, see https://cloud.google.com/tasks/.
  rules:
  - selector: google.cloud.location.Locations.GetLocation
    description: Gets information about a location.

  - selector: google.cloud.location.Locations.ListLocations
    description: Lists information about the supported locations for this service.

backend:
  rules:
  - selector: google.cloud.location.Locations.GetLocation
    deadline: 5.0
  - selector: google.cloud.location.Locations.ListLocations
    deadline: 5.0
  - selector: 'google.cloud.tasks.v2.CloudTasks.*'
    deadline: 15.0

http:
  rules:
  - selector: google.cloud.location.Locations.GetLocation
    get: '/v2/{name=projects/*/locations/*}'
  - selector: google.cloud.location.Locations.ListLocations
    get: '/v2/{name=projects/*}/locations'

authentication:
  rules:
  - selector: google.cloud.location.Locations.GetLocation
    oauth:
      canonical_scopes: |-
        https://www.googleapis.com/auth/cloud-platform
  - selector: google.cloud.location.Locations.ListLocations
    oauth:
      canonical_scopes: |-
        https://www.googleapis.com/auth/cloud-platform
  - selector: 'google.cloud.tasks.v2.CloudTasks.*'
    oauth:
      canonical_scopes: |-
        https://www.googleapis.com/auth/cloud-platform
"""

SECRETMANAGER_V1_YAML = """\
type: google.api.Service
config_version: 3
name: secretmanager.googleapis.com
title: Secret Manager API

apis:
- name: google.cloud.location.Locations
- name: google.cloud.secretmanager.v1.SecretManagerService

documentation:
  summary: |-
    Stores sensitive data such as API keys, passwords, and certificates.
    Provides convenience while improving security.
  overview: Secret Manager Overview
  rules:
  - selector: google.cloud.location.Locations.GetLocation
    description: Gets information about a location.

  - selector: google.cloud.location.Locations.ListLocations
    description: Lists information about the supported locations for this service.

backend:
  rules:
  - selector: 'google.cloud.secretmanager.v1.SecretManagerService.*'
    deadline: 10.0

http:
  rules:
  - selector: google.cloud.location.Locations.GetLocation
    get: '/v1/{name=projects/*/locations/*}'
  - selector: google.cloud.location.Locations.ListLocations
    get: '/v1/{name=projects/*}/locations'

authentication:
  rules:
  - selector: google.cloud.location.Locations.GetLocation
    oauth:
      canonical_scopes: |-
        https://www.googleapis.com/auth/cloud-platform
  - selector: google.cloud.location.Locations.ListLocations
    oauth:
      canonical_scopes: |-
        https://www.googleapis.com/auth/cloud-platform
  - selector: 'google.cloud.secretmanager.v1.SecretManagerService.*'
    oauth:
      canonical_scopes: |-
        https://www.googleapis.com/auth/cloud-platform
"""

TASKS_FILES = [
    f"google/cloud/tasks/v2/{n}.proto" for n in ("cloudtasks", "queue", "target", "task")
]
SECRETS_FILES = [f"google/cloud/secretmanager/v1/{n}.proto" for n in ("service", "resources")]


# --- Generation (once per session) and servers (once per mode) ---


@pytest.fixture(scope="session")
def tasks_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeneratedApi]:
    root = tmp_path_factory.mktemp("google_clients_tasks")
    with generated_api(
        root, "clients_tasks_gen", "google.cloud.tasks.v2", TASKS_FILES, CLOUDTASKS_V2_YAML
    ) as api:
        yield api


@pytest.fixture(scope="session")
def secrets_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GeneratedApi]:
    root = tmp_path_factory.mktemp("google_clients_secrets")
    with generated_api(
        root,
        "clients_secrets_gen",
        "google.cloud.secretmanager.v1",
        SECRETS_FILES,
        SECRETMANAGER_V1_YAML,
    ) as api:
        yield api


@dataclass(frozen=True)
class Stack:
    """Both APIs behind their gateways, in one mode, with a client for each."""

    mode: str
    tasks_api: GeneratedApi
    tasks: tasks_v2.CloudTasksClient
    tasks_fake: Any
    secrets_api: GeneratedApi
    secrets: secretmanager_v1.SecretManagerServiceClient
    secrets_fake: Any


@pytest.fixture(scope="module", params=MODES)
def stack(
    request: pytest.FixtureRequest, tasks_api: GeneratedApi, secrets_api: GeneratedApi
) -> Iterator[Stack]:
    tasks_fake = make_cloud_tasks(tasks_api.service)
    secrets_fake = make_secret_manager(secrets_api.service)
    tasks_fakes = [tasks_fake, make_locations(tasks_api.locations)]
    secrets_fakes = [secrets_fake, make_locations(secrets_api.locations)]
    with (
        served(tasks_api, tasks_fakes, request.param) as tasks_url,
        served(secrets_api, secrets_fakes, request.param) as secrets_url,
    ):
        yield Stack(
            mode=request.param,
            tasks_api=tasks_api,
            tasks=tasks_v2.CloudTasksClient(**client_options(tasks_url)),
            tasks_fake=tasks_fake,
            secrets_api=secrets_api,
            secrets=secretmanager_v1.SecretManagerServiceClient(**client_options(secrets_url)),
            secrets_fake=secrets_fake,
        )


@pytest.fixture
def project(request: pytest.FixtureRequest) -> str:
    """A project of this test's own: the servers (and their fakes) live for the module."""
    return "projects/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")


def service_message(error: exceptions.GoogleAPICallError) -> str:
    """The service's message in a REST client's error (`"<METHOD> <URL>: <message>"`)."""
    prefix = f"{error.response.request.method} {error.response.request.url}: "
    assert error.message.startswith(prefix), error.message
    return str(error.message).removeprefix(prefix)


def wire_status(error: exceptions.GoogleAPICallError) -> tuple[int, str]:
    """`code` and `status` of the AIP-193 body the client got.

    google-api-core picks the exception class from the HTTP status alone: a 409 is `Conflict`
    whether the gRPC code was ALREADY_EXISTS or ABORTED, a 400 `BadRequest` for
    INVALID_ARGUMENT, FAILED_PRECONDITION and OUT_OF_RANGE; `status` is where the code's name is.
    """
    body = error.response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "status", "details"}, body
    return body["error"]["code"], body["error"]["status"]


# --- Cloud Tasks ---


def test_queue_create_get_delete(stack: Stack, project: str) -> None:
    parent = f"{project}/locations/europe-west1"
    queue = tasks_v2.Queue(
        name=f"{parent}/queues/mail",
        rate_limits=tasks_v2.RateLimits(max_dispatches_per_second=5, max_concurrent_dispatches=2),
    )
    created = stack.tasks.create_queue(parent=parent, queue=queue)
    assert created.name == queue.name
    assert created.state == tasks_v2.Queue.State.RUNNING
    assert created.rate_limits.max_dispatches_per_second == 5

    fetched = stack.tasks.get_queue(name=queue.name)
    assert fetched == created

    stack.tasks.delete_queue(name=queue.name)
    assert queue.name not in stack.tasks_fake.queues


def test_list_queues_pages_and_filter(stack: Stack, project: str) -> None:
    parent = f"{project}/locations/us-central1"
    for number in range(5):
        name = f"{parent}/queues/q{number}"
        stack.tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=name))
        if number % 2 == 0:
            stack.tasks.pause_queue(name=name)

    pager = stack.tasks.list_queues(
        request=tasks_v2.ListQueuesRequest(parent=parent, filter="state: PAUSED", page_size=2)
    )
    pages = [[queue.name for queue in page.queues] for page in pager.pages]
    assert pages == [[f"{parent}/queues/q0", f"{parent}/queues/q2"], [f"{parent}/queues/q4"]]
    everything = stack.tasks.list_queues(parent=parent)
    assert [q.name for q in everything] == [f"{parent}/queues/q{n}" for n in range(5)]
    requests = [r for r in stack.tasks_fake.received if type(r).__name__ == "ListQueuesRequest"]
    assert [(r.filter, r.page_size, bool(r.page_token)) for r in requests[-3:]] == [
        ("state: PAUSED", 2, False),
        ("state: PAUSED", 2, True),
        ("", 0, False),
    ]


def test_update_queue_with_a_mask(stack: Stack, project: str) -> None:
    parent = f"{project}/locations/europe-west1"
    name = f"{parent}/queues/reports"
    limits = tasks_v2.RateLimits(max_dispatches_per_second=5, max_burst_size=10)
    stack.tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=name, rate_limits=limits))

    changed = tasks_v2.Queue(
        name=name,
        rate_limits=tasks_v2.RateLimits(max_dispatches_per_second=50, max_burst_size=99),
        retry_config=tasks_v2.RetryConfig(max_attempts=3),
    )
    mask = field_mask_pb2.FieldMask(paths=["rate_limits.max_dispatches_per_second"])
    updated = stack.tasks.update_queue(queue=changed, update_mask=mask)

    # Only the masked field changed: not the burst size, not the retry config.
    assert updated.rate_limits.max_dispatches_per_second == 50
    assert updated.rate_limits.max_burst_size == 10
    assert updated.retry_config.max_attempts == 0
    [received] = [r for r in stack.tasks_fake.received if type(r).__name__ == "UpdateQueueRequest"]
    assert received.update_mask.paths == ["rate_limits.max_dispatches_per_second"]


def test_pause_and_resume_are_custom_verbs(stack: Stack, project: str) -> None:
    parent = f"{project}/locations/europe-west1"
    name = f"{parent}/queues/nightly"
    stack.tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=name))

    assert stack.tasks.pause_queue(name=name).state == tasks_v2.Queue.State.PAUSED
    assert stack.tasks.get_queue(name=name).state == tasks_v2.Queue.State.PAUSED
    assert stack.tasks.resume_queue(name=name).state == tasks_v2.Queue.State.RUNNING


def test_tasks_create_list_run_delete(stack: Stack, project: str) -> None:
    parent = f"{project}/locations/europe-west1"
    queue = f"{parent}/queues/hooks"
    stack.tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=queue))
    request = tasks_v2.HttpRequest(
        url="https://example.com/hook",
        http_method=tasks_v2.HttpMethod.PUT,
        headers={"Content-Type": "application/json"},
        body=b'{"event": "signup"}',
    )
    full = tasks_v2.Task.View.FULL
    created = stack.tasks.create_task(
        parent=queue, task=tasks_v2.Task(name=f"{queue}/tasks/t1", http_request=request)
    )
    assert created.view == tasks_v2.Task.View.BASIC
    assert created.http_request.body == b""  # BASIC leaves the body out
    assert created.http_request.http_method == tasks_v2.HttpMethod.PUT
    stack.tasks.create_task(
        parent=queue, task=tasks_v2.Task(name=f"{queue}/tasks/t2", http_request=request)
    )

    ran = stack.tasks.run_task(
        request=tasks_v2.RunTaskRequest(name=f"{queue}/tasks/t1", response_view=full)
    )
    assert ran.dispatch_count == 1
    assert ran.http_request.body == b'{"event": "signup"}'
    assert ran.last_attempt.dispatch_time.year == 2026  # type: ignore[attr-defined]

    listed = stack.tasks.list_tasks(
        request=tasks_v2.ListTasksRequest(parent=queue, response_view=full, page_size=1)
    )
    tasks = list(listed)
    assert [(t.name, t.dispatch_count, t.http_request.headers["Content-Type"]) for t in tasks] == [
        (f"{queue}/tasks/t1", 1, "application/json"),
        (f"{queue}/tasks/t2", 0, "application/json"),
    ]
    got = stack.tasks.get_task(
        request=tasks_v2.GetTaskRequest(name=f"{queue}/tasks/t2", response_view=full)
    )
    assert (got.view, got.http_request.body) == (full, b'{"event": "signup"}')

    stack.tasks.delete_task(name=f"{queue}/tasks/t2")
    assert [t.name for t in stack.tasks.list_tasks(parent=queue)] == [f"{queue}/tasks/t1"]


def test_tasks_errors_are_the_services(stack: Stack, project: str) -> None:
    parent = f"{project}/locations/europe-west1"
    name = f"{parent}/queues/once"
    stack.tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=name))

    with pytest.raises(exceptions.Conflict) as exists:
        stack.tasks.create_queue(parent=parent, queue=tasks_v2.Queue(name=name))
    assert service_message(exists.value) == f"Queue {name} already exists."
    assert wire_status(exists.value) == (409, "ALREADY_EXISTS")
    assert (exists.value.reason, exists.value.domain) == (
        "RESOURCE_ALREADY_EXISTS",
        "cloudtasks.googleapis.com",
    )
    assert exists.value.metadata == {"resource": name}

    missing = f"{parent}/queues/never"
    with pytest.raises(exceptions.NotFound) as not_found:
        stack.tasks.get_queue(name=missing)
    assert service_message(not_found.value) == f"Queue {missing} does not exist."
    assert not_found.value.details == [
        {
            "@type": "type.googleapis.com/google.rpc.ResourceInfo",
            "resourceType": "Queue",
            "resourceName": missing,
            "description": "not found",
        }
    ]
    assert wire_status(not_found.value) == (404, "NOT_FOUND")

    with pytest.raises(exceptions.BadRequest) as invalid:
        stack.tasks.create_queue(
            parent=parent, queue=tasks_v2.Queue(name=f"{parent}/queues/not_allowed!")
        )
    why = f"must be {parent}/queues/QUEUE_ID, QUEUE_ID letters, digits, hyphens"
    assert service_message(invalid.value) == f"Invalid queue.name: {why}"
    assert wire_status(invalid.value) == (400, "INVALID_ARGUMENT")
    assert invalid.value.details == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "queue.name", "description": why}],
        }
    ]

    with pytest.raises(exceptions.BadRequest) as bad_filter:
        list(stack.tasks.list_queues(request={"parent": parent, "filter": "color = blue"}))
    assert service_message(bad_filter.value) == (
        "Invalid filter: cannot filter on 'color'; known: state, labels.<key>"
    )


def test_tasks_locations_mixin(stack: Stack, project: str) -> None:
    """GetLocation and ListLocations where cloudtasks_v2.yaml's `http:` rules put them (under
    `/v2/projects/…`), replacing locations.proto's own annotations (`/v1/{name=locations/*}`)."""
    location = stack.tasks.get_location(request={"name": f"{project}/locations/europe-west1"})
    assert isinstance(location, locations_pb2.Location)
    assert (location.location_id, location.display_name) == ("europe-west1", "Belgium")
    assert location.labels["area"] == "europe"

    first = stack.tasks.list_locations(request={"name": project, "page_size": 3})
    rest = stack.tasks.list_locations(
        request={"name": project, "page_size": 3, "page_token": first.next_page_token}
    )
    ids = [loc.location_id for loc in [*first.locations, *rest.locations]]
    assert ids == ["asia-east1", "europe-west1", "europe-west4", "us-central1"]
    assert rest.next_page_token == ""
    europe = stack.tasks.list_locations(request={"name": project, "filter": "labels.area=europe"})
    assert [loc.location_id for loc in europe.locations] == ["europe-west1", "europe-west4"]


def test_domain_scoped_project(stack: Stack) -> None:
    """Project ids may hold a colon (domain-scoped projects, `example.com:alpha`), which the
    clients percent-encode inside multi-segment variables (`{parent=projects/*/locations/*}`).

    By default the gateway keeps the escapes of reserved characters there (RFC 6570 reserved
    expansion, docs/http-transcoding.md §2) and googleapis' YAML does not set
    `fully_decode_reserved_expansion`, so the service sees `example.com%3Aalpha`; the gateway
    option turns full decoding on for every route.
    """
    parent = "projects/example.com:alpha/locations/us-central1"
    queue = tasks_v2.Queue(name=f"{parent}/queues/mail")
    with pytest.raises(exceptions.BadRequest) as kept:
        stack.tasks.create_queue(parent=parent, queue=queue)
    assert "projects/example.com%3Aalpha/locations/us-central1" in service_message(kept.value)

    fake = make_cloud_tasks(stack.tasks_api.service)
    fakes = [fake, make_locations(stack.tasks_api.locations)]
    options = dataclasses.replace(OPTIONS, fully_decode_reserved_expansion=True)
    with served(stack.tasks_api, fakes, stack.mode, options) as url:
        client = tasks_v2.CloudTasksClient(**client_options(url))
        created = client.create_queue(parent=parent, queue=queue)
        assert client.get_queue(name=created.name).name == f"{parent}/queues/mail"
        client.pause_queue(name=created.name)  # a custom verb after the decoded colon
    assert [(type(r).__name__, getattr(r, "parent", None) or r.name) for r in fake.received] == [
        ("CreateQueueRequest", parent),
        ("GetQueueRequest", f"{parent}/queues/mail"),
        ("PauseQueueRequest", f"{parent}/queues/mail"),
    ]


# --- Secret Manager ---


def _new_secret(stack: Stack, project: str, secret_id: str, **labels: str) -> Any:
    return stack.secrets.create_secret(
        parent=project,
        secret_id=secret_id,
        secret=secretmanager_v1.Secret(
            replication=secretmanager_v1.Replication(
                automatic=secretmanager_v1.Replication.Automatic()
            ),
            labels=labels,
        ),
    )


def test_secret_create_get_delete(stack: Stack, project: str) -> None:
    created = _new_secret(stack, project, "db-password", env="prod")
    assert created.name == f"{project}/secrets/db-password"
    assert created.labels == {"env": "prod"}
    assert created.create_time.year == 2026
    assert "automatic" in created.replication

    assert stack.secrets.get_secret(name=created.name) == created

    # The etag is a quoted string (`"1"`) in the query.
    stack.secrets.delete_secret(request={"name": created.name, "etag": created.etag})
    assert created.name not in stack.secrets_fake.secrets
    [deleted] = [
        r for r in stack.secrets_fake.received if type(r).__name__ == "DeleteSecretRequest"
    ]
    assert deleted.etag == '"1"'


def test_list_secrets_pages_and_filter(stack: Stack, project: str) -> None:
    for number in range(5):
        _new_secret(stack, project, f"s{number}", env="prod" if number != 2 else "dev")

    pager = stack.secrets.list_secrets(
        request={"parent": project, "filter": "labels.env=prod", "page_size": 3}
    )
    pages = [
        ([s.name.rpartition("/")[2] for s in page.secrets], page.total_size) for page in pager.pages
    ]
    assert pages == [(["s0", "s1", "s3"], 4), (["s4"], 4)]
    named = stack.secrets.list_secrets(request={"parent": project, "filter": "name:s2"})
    assert [s.labels["env"] for s in named] == ["dev"]


def test_update_secret_with_a_mask(stack: Stack, project: str) -> None:
    created = _new_secret(stack, project, "api-key", env="prod", team="payments")
    changed = secretmanager_v1.Secret(
        name=created.name, labels={"env": "staging"}, annotations={"owner": "ops"}
    )
    mask = field_mask_pb2.FieldMask(paths=["labels"])
    updated = stack.secrets.update_secret(secret=changed, update_mask=mask)
    assert updated.labels == {"env": "staging"}  # the whole map, as the mask names it
    assert dict(updated.annotations) == {}  # not in the mask
    assert updated.etag != created.etag


def test_add_version_and_access_are_custom_verbs(stack: Stack, project: str) -> None:
    secret = _new_secret(stack, project, "token")
    # 0xE3069283: CRC-32C of "123456789", the check value of the CRC catalogues.
    check = secretmanager_v1.SecretPayload(data=b"123456789", data_crc32c=0xE3069283)
    first = stack.secrets.add_secret_version(parent=secret.name, payload=check)
    assert first.name == f"{secret.name}/versions/1"
    assert first.state == secretmanager_v1.SecretVersion.State.ENABLED
    assert first.client_specified_payload_checksum
    second = stack.secrets.add_secret_version(
        parent=secret.name, payload=secretmanager_v1.SecretPayload(data=b"\x00\xffbinary")
    )
    assert not second.client_specified_payload_checksum

    latest = stack.secrets.access_secret_version(name=f"{secret.name}/versions/latest")
    assert latest.name == second.name
    assert latest.payload.data == b"\x00\xffbinary"
    oldest = stack.secrets.access_secret_version(name=first.name)
    assert (oldest.payload.data, oldest.payload.data_crc32c) == (b"123456789", 0xE3069283)


@settings(
    max_examples=25,
    deadline=None,
    # `project` is the same for every example: each adds a version to the same secret.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.binary(max_size=4096), checked=st.booleans())
def test_any_payload_round_trips(stack: Stack, project: str, data: bytes, checked: bool) -> None:
    """Payload bytes go as base64 in the body of `:addVersion`, come back from `:access` as
    base64 in the response, and the CRC32C (an int64: a JSON string) both ways."""
    secret = f"{project}/secrets/blob"
    if secret not in stack.secrets_fake.secrets:
        _new_secret(stack, project, "blob")
    payload = secretmanager_v1.SecretPayload(data=data)
    if checked:
        payload.data_crc32c = crc32c(data)
    version = stack.secrets.add_secret_version(parent=secret, payload=payload)
    assert version.client_specified_payload_checksum == checked
    accessed = stack.secrets.access_secret_version(name=version.name)
    assert (accessed.payload.data, accessed.payload.data_crc32c) == (data, crc32c(data))


def test_secret_iam_policy(stack: Stack, project: str) -> None:
    """The IAM methods of the service: POST `:setIamPolicy` with `body: "*"`, GET
    `:getIamPolicy` with the nested `options.requestedPolicyVersion` in the query."""
    secret = _new_secret(stack, project, "shared")
    accessor = {"role": "roles/secretmanager.secretAccessor", "members": ["user:ada@example.com"]}
    policy = stack.secrets.set_iam_policy(
        request={"resource": secret.name, "policy": {"bindings": [accessor]}}
    )
    assert (policy.version, policy.etag) == (1, b"etag-1")

    got = stack.secrets.get_iam_policy(
        request={"resource": secret.name, "options": {"requested_policy_version": 3}}
    )
    assert [(b.role, list(b.members)) for b in got.bindings] == [
        ("roles/secretmanager.secretAccessor", ["user:ada@example.com"])
    ]
    [asked] = [r for r in stack.secrets_fake.received if type(r).__name__ == "GetIamPolicyRequest"]
    assert asked.options.requested_policy_version == 3


def test_secret_errors_are_the_services(stack: Stack, project: str) -> None:
    secret = _new_secret(stack, project, "only-once")
    with pytest.raises(exceptions.Conflict) as exists:
        _new_secret(stack, project, "only-once")
    assert service_message(exists.value) == f"Secret {secret.name} already exists."
    assert wire_status(exists.value) == (409, "ALREADY_EXISTS")
    assert exists.value.domain == "secretmanager.googleapis.com"

    with pytest.raises(exceptions.NotFound) as not_found:
        stack.secrets.access_secret_version(name=f"{secret.name}/versions/latest")
    expected = f"SecretVersion {secret.name}/versions/latest does not exist."
    assert service_message(not_found.value) == expected
    assert wire_status(not_found.value) == (404, "NOT_FOUND")

    with pytest.raises(exceptions.BadRequest) as bad_id:
        _new_secret(stack, project, "no spaces")
    assert bad_id.value.details == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [
                {
                    "field": "secret_id",
                    "description": "1 to 255 letters, digits, underscores or hyphens",
                }
            ],
        }
    ]

    wrong = secretmanager_v1.SecretPayload(data=b"123456789", data_crc32c=1)
    with pytest.raises(exceptions.BadRequest) as bad_checksum:
        stack.secrets.add_secret_version(parent=secret.name, payload=wrong)
    assert (
        service_message(bad_checksum.value)
        == "Invalid payload.data_crc32c: does not match the data"
    )
    assert bad_checksum.value.details[0]["fieldViolations"][0]["field"] == "payload.data_crc32c"


def test_secret_manager_locations_mixin(stack: Stack, project: str) -> None:
    """The same mixin at secretmanager_v1.yaml's `/v1/{name=projects/*/locations/*}`."""
    location = stack.secrets.get_location(request={"name": f"{project}/locations/us-central1"})
    assert location.display_name == "Iowa"
    listed = stack.secrets.list_locations(request={"name": project})
    assert len(listed.locations) == 4
