"""Google's system parameters in a query string: which keys are no field, and what `$alt` asks.

docs/http-transcoding.md §3. Google's generated REST clients send `$alt=json;enum-encoding=int` with
every request; other clients send the documented parameters without the `$`. Rules:

- a key that starts with `$` (`$alt`, `$fields`, `$.xgafv`, `%24alt` once decoded) is never a
  field: it is dropped, never a 400;
- a documented name without `$` (`key`, `fields`, …) is dropped only when the request message
  has no top-level field of that name (proto or JSON name): a field named `key` gets the value;
- `$alt` (or a dropped `alt`) whose parameters hold `enum-encoding=int` makes that call's
  response write enums as numbers. Other `alt` values (`proto`, `media`, `sse`) are not
  served: the response stays JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from protoc_gen_restmon.runtime.transcode.values import MessageDescriptor

# The URL query parameters of https://cloud.google.com/apis/docs/system-parameters (its table's
# names without `$`, including the older `oauth_token`), and the standard parameters every
# Google discovery document lists (`upload_protocol`, `uploadType`, `userIp`; e.g.
# https://www.googleapis.com/discovery/v1/apis/storage/v1/rest, "parameters").
SYSTEM_PARAMETERS: Final = frozenset(
    {
        "access_token",
        "alt",
        "callback",
        "fields",
        "key",
        "oauth_token",
        "prettyPrint",
        "quotaUser",
        "upload_protocol",
        "uploadType",
        "userIp",
        "userProject",
    }
)
ALT_KEYS: Final = ("$alt", "alt")


def is_system_parameter(key: str, descriptor: MessageDescriptor) -> bool:
    """Whether the query key `key` is a system parameter of a request of type `descriptor`."""
    if key.startswith("$"):
        return True
    return key in SYSTEM_PARAMETERS and not _has_field(descriptor, key)


def wants_enum_numbers(params: tuple[tuple[str, str], ...], descriptor: MessageDescriptor) -> bool:
    """`$alt=json;enum-encoding=int` (or `alt=…` where `alt` is no field) among `params`."""
    return any(
        key in ALT_KEYS and is_system_parameter(key, descriptor) and _int_enums(value)
        for key, value in params
    )


def may_ask_enum_numbers(query: bytes) -> bool:
    """A quick look at the raw query: False when no key can be `alt` or `$alt` (no `alt`, and
    no percent escape that could spell it), so most requests skip a second parse."""
    return b"alt" in query or b"%" in query


def _int_enums(alt: str) -> bool:
    """`json;enum-encoding=int` -> True: the `;`-separated parameters after the format."""
    _, *parameters = alt.split(";")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "enum-encoding" and value.strip().lower() == "int":
            return True
    return False


def _has_field(descriptor: MessageDescriptor, name: str) -> bool:
    if name in descriptor.fields_by_name:
        return True
    return any(f.json_name == name for f in descriptor.fields)
