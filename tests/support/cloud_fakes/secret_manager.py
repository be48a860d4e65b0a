"""Secret Manager v1 (google.cloud.secretmanager.v1.SecretManagerService) in memory.

What the real service does that the client tests look at: secret ids checked, ALREADY_EXISTS /
NOT_FOUND, `labels.<key>=<value>` and `name:<text>` filters with pages and a total size, update
masks (AIP-134, required), etags, versions numbered from 1 with the `latest` alias, payloads
checked against the CRC32C the client sends, and the IAM policy of a secret.
"""

from __future__ import annotations

import datetime
import re
from types import ModuleType
from typing import Any

from tests.support.cloud_fakes.errors import already_exists, invalid_argument, not_found
from tests.support.cloud_fakes.paging import apply_mask, matches, page

DOMAIN = "secretmanager.googleapis.com"
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
SECRET_SETTINGS = ("labels", "annotations", "version_aliases", "topics", "rotation")
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as Secret Manager checks it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def make_secret_manager(pb: ModuleType) -> Any:
    """A `SecretManagerServiceBase` instance with no secrets (`pb`: the generated package)."""
    empty = pb.betterproto_lib_google_protobuf.Empty
    iam = pb.___iam_v1__  # the generated google.iam.v1, as betterproto imports it

    class SecretManager(pb.SecretManagerServiceBase):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.secrets: dict[str, Any] = {}
            self.versions: dict[str, list[tuple[Any, Any]]] = {}  # secret -> (version, payload)
            self.policies: dict[str, Any] = {}
            self.received: list[Any] = []

        async def create_secret(self, request: Any) -> Any:
            self.received.append(request)
            if not _SECRET_ID.match(request.secret_id):
                why = "1 to 255 letters, digits, underscores or hyphens"
                raise invalid_argument("secret_id", why)
            name = f"{request.parent}/secrets/{request.secret_id}"
            if name in self.secrets:
                raise already_exists(DOMAIN, "Secret", name)
            secret = request.secret
            secret.name, secret.create_time, secret.etag = name, NOW, '"1"'
            self.secrets[name] = secret
            self.versions[name] = []
            return secret

        async def get_secret(self, request: Any) -> Any:
            self.received.append(request)
            return self._secret(request.name)

        async def list_secrets(self, request: Any) -> Any:
            self.received.append(request)
            fields = {"name": lambda secret: secret.name.rpartition("/")[2]}
            mine = [s for s in self.secrets.values() if s.name.startswith(request.parent + "/")]
            chosen = [s for s in mine if matches(request.filter, s, fields)]
            secrets, token = page(chosen, request.page_size, request.page_token, _name)
            return pb.ListSecretsResponse(
                secrets=secrets, next_page_token=token, total_size=len(chosen)
            )

        async def update_secret(self, request: Any) -> Any:
            self.received.append(request)
            secret = self._secret(request.secret.name)
            if not request.update_mask.paths:
                raise invalid_argument("update_mask", "is required")
            apply_mask(secret, request.secret, request.update_mask.paths, SECRET_SETTINGS)
            secret.etag = f'"{int(secret.etag.strip(chr(34))) + 1}"'
            return secret

        async def delete_secret(self, request: Any) -> Any:
            self.received.append(request)
            secret = self._secret(request.name)
            if request.etag and request.etag != secret.etag:
                raise invalid_argument("etag", f"{request.etag} is not the secret's etag")
            del self.secrets[request.name], self.versions[request.name]
            return empty()

        async def add_secret_version(self, request: Any) -> Any:
            self.received.append(request)
            self._secret(request.parent)
            payload = request.payload
            checksum = payload.data_crc32_c
            if checksum is not None and checksum != crc32c(payload.data):
                raise invalid_argument("payload.data_crc32c", "does not match the data")
            versions = self.versions[request.parent]
            version = pb.SecretVersion(
                name=f"{request.parent}/versions/{len(versions) + 1}",
                create_time=NOW,
                state=pb.SecretVersionState.ENABLED,
                client_specified_payload_checksum=checksum is not None,
            )
            versions.append((version, payload))
            return version

        async def access_secret_version(self, request: Any) -> Any:
            self.received.append(request)
            version, payload = self._version(request.name)
            data = payload.data
            return pb.AccessSecretVersionResponse(
                name=version.name, payload=pb.SecretPayload(data=data, data_crc32_c=crc32c(data))
            )

        async def get_secret_version(self, request: Any) -> Any:
            self.received.append(request)
            return self._version(request.name)[0]

        async def set_iam_policy(self, request: Any) -> Any:
            self.received.append(request)
            self._secret(request.resource)
            policy = request.policy
            policy.version = policy.version or 1
            policy.etag = f"etag-{len(self.policies) + 1}".encode()
            self.policies[request.resource] = policy
            return policy

        async def get_iam_policy(self, request: Any) -> Any:
            self.received.append(request)
            self._secret(request.resource)
            return self.policies.get(request.resource) or iam.Policy(version=1)

        def _secret(self, name: str) -> Any:
            if name not in self.secrets:
                raise not_found("Secret", name)
            return self.secrets[name]

        def _version(self, name: str) -> tuple[Any, Any]:
            """A version by number, or `latest`: the newest."""
            secret, _, number = name.partition("/versions/")
            versions = self.versions.get(secret, [])
            if number == "latest" and versions:
                return versions[-1]
            if number.isdigit() and 0 < int(number) <= len(versions):
                return versions[int(number) - 1]
            raise not_found("SecretVersion", name)

    return SecretManager()


def _name(item: Any) -> str:
    return str(item.name)
