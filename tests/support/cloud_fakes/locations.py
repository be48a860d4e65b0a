"""The Locations mixin (google.cloud.location.Locations): every project has the same regions."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from tests.support.cloud_fakes.errors import invalid_argument, not_found
from tests.support.cloud_fakes.paging import matches, page

# location id -> (display name, the `cloud.googleapis.com/region`-style label)
REGIONS = {
    "asia-east1": ("Taiwan", "asia"),
    "europe-west1": ("Belgium", "europe"),
    "europe-west4": ("Netherlands", "europe"),
    "us-central1": ("Iowa", "us"),
}
_PROJECT = re.compile(r"^projects/[^/]+$")


def make_locations(loc: ModuleType) -> Any:
    """A `LocationsBase` instance over `REGIONS` (`loc` is the generated google.cloud.location)."""

    class Locations(loc.LocationsBase):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.received: list[Any] = []

        async def list_locations(self, request: Any) -> Any:
            self.received.append(request)
            if not _PROJECT.match(request.name):
                raise invalid_argument("name", f"{request.name!r} is not projects/<project>")
            every = [self._location(request.name, region) for region in REGIONS]
            fields = {"displayName": lambda item: item.display_name}
            chosen = [item for item in every if matches(request.filter, item, fields)]
            items, token = page(chosen, request.page_size, request.page_token, _name)
            return loc.ListLocationsResponse(locations=items, next_page_token=token)

        async def get_location(self, request: Any) -> Any:
            self.received.append(request)
            project, _, region = request.name.partition("/locations/")
            if not _PROJECT.match(project) or region not in REGIONS:
                raise not_found("Location", request.name)
            return self._location(project, region)

        def _location(self, project: str, region: str) -> Any:
            display, area = REGIONS[region]
            return loc.Location(
                name=f"{project}/locations/{region}",
                location_id=region,
                display_name=display,
                labels={"cloud.googleapis.com/region": region, "area": area},
            )

    return Locations()


def _name(item: Any) -> str:
    return str(item.name)
