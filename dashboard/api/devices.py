"""The device registry: list, get, create, update, delete, bulk CSV import and export.

Reads are for every role and row-level security decides which devices exist: a device the role
cannot see is 404, never 403 (that would say it exists). Writes are admin only: a unique-key clash on
create would tell another role that a hidden device exists (docs/security.md). Creates, updates and
imports all go through the registry import (store/registry.py), so the API and `lorawatch devices
import` accept and refuse exactly the same devices, with the same messages.

Every view of a care device (kind care, or sealed) is audited, with device names only. The helpers
here (`find_device`, `audit_care`, `CsvResponse`) are shared by the readings and gateways routes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Body, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.types import Receive, Scope, Send

from dashboard.deps import Acting, RequestContext, require
from dashboard.errors import ApiError, ErrorBody
from dashboard.pagination import Cursor, Limit, Page, decode_cursor, page
from store import audit, device_views, registry
from store.device_views import DeviceView
from store.registry_csv import RegistryError


class AllowingRoute(APIRoute):
    """A route whose 405 lists every method of its path in `Allow`. Starlette answers a method it has
    no route for with the first route of the path that matched, so `OPTIONS /devices` would say
    `Allow: GET` although POST is there too (RFC 9110 asks for all of them)."""

    _methods: ClassVar[dict[str, set[str]]] = {}

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._methods.setdefault(self.path, set()).update(self.methods or ())

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.methods and scope["method"] not in self.methods:
            allow = ", ".join(sorted(self._methods[self.path]))
            raise ApiError(405, "method_not_allowed", "Method Not Allowed", headers={"Allow": allow})
        await super().handle(scope, receive, send)


router = APIRouter(prefix="/api/v1", tags=["devices"], route_class=AllowingRoute)

Kind = Literal["gully", "care", "unassigned"]
State = Literal["unassigned", "never_seen", "offline", "active"]
#: Longest upload `POST /devices/import` reads (a 10,000-device registry is about 1 MB).
MAX_IMPORT_BYTES = 8 * 1024 * 1024

#: No control characters (what the registry refuses), so every value the schema allows is one it takes.
_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*$"
#: A device or application id: it must work as one URL path segment, so a stricter shape than a file's.
_ID = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"

DeviceIdPath = Annotated[str, Path(min_length=1, max_length=128, description="the device's device_id")]
ApplicationQuery = Annotated[
    str | None,
    Query(max_length=128, description="the device's application_id: needed when its device_id is in several"),
]
_CONFLICT = {"model": ErrorBody, "description": "The device_id is in several applications (pass application_id)"}


class CsvResponse(Response):
    """A CSV body (the OpenAPI document declares it as text/csv)."""

    media_type = "text/csv"


def csv_responses(description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {"text/csv": {"schema": {"type": "string"}}}}}


class DeviceOut(BaseModel):
    """A device. `state`: unassigned (no kind yet, admin only), never_seen (registered, never heard),
    offline (not heard for 24 h), active. `sealed`: it is or was a care device. `shared_name`: the same
    device_id is in another application you can see (pass application_id to address this one)."""

    id: int
    device_id: str
    application_id: str
    source: str
    kind: Kind
    state: State
    sealed: bool
    shared_name: bool
    name: str | None
    brand_id: str | None
    model_id: str | None
    latitude: float | None
    longitude: float | None
    sensor_height_mm: float | None
    outlet_invert_mm: float | None
    care_room: str | None
    care_group: str | None
    dev_eui: str | None
    attributes: dict[str, Any]
    first_seen: AwareDatetime | None
    last_seen: AwareDatetime | None
    created_at: AwareDatetime


def device_out(device: DeviceView) -> DeviceOut:
    return DeviceOut.model_validate(device, from_attributes=True)


_Text = Annotated[str | None, Field(max_length=256, pattern=_TEXT)]
_ModelId = Annotated[str | None, Field(max_length=128, pattern=_TEXT)]
_Latitude = Annotated[float | None, Field(ge=-90, le=90, allow_inf_nan=False)]
_Longitude = Annotated[float | None, Field(ge=-180, le=180, allow_inf_nan=False)]
_Height = Annotated[float | None, Field(gt=0, allow_inf_nan=False, description="sensor above the gully floor")]
_Invert = Annotated[float | None, Field(ge=0, allow_inf_nan=False, description="outlet invert above the floor")]


class _RegistryFields(BaseModel):
    """The registry's columns (docs/devices.md). Gully geometry only on a gully, care room and group
    only on a care sensor, the outlet invert below the sensor: checked as the registry import does."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: _Text = None
    brand_id: _ModelId = None
    model_id: _ModelId = None
    latitude: _Latitude = None
    longitude: _Longitude = None
    sensor_height_mm: _Height = None
    outlet_invert_mm: _Invert = None
    care_room: _Text = None
    care_group: _Text = None

    def registry_values(self) -> dict[str, object]:
        """The columns the request gave (null clears one), as the registry import takes them."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class DeviceCreate(_RegistryFields):
    device_id: str = Field(pattern=_ID)
    application_id: str = Field(default="", pattern=r"^$|" + _ID, description="empty: in no application yet")
    kind: Kind = "unassigned"

    def registry_values(self) -> dict[str, object]:
        values = super().registry_values()
        values.pop("device_id", None)
        values.pop("application_id", None)
        values["kind"] = self.kind
        return values


class DevicePatch(_RegistryFields):
    """Only the fields sent change; null clears a field (kind: null or absent leaves it)."""

    kind: Kind | None = None

    def registry_values(self) -> dict[str, object]:
        values = super().registry_values()
        if values.get("kind", "") is None:
            del values["kind"]
        return values


class ImportOut(BaseModel):
    """What an import did (`applied`), or with `dry_run` would do: devices created, updated, unchanged."""

    created: int
    updated: int
    unchanged: int
    applied: bool
    dry_run: bool


# --- shared by the readings and gateways routes ------------------------------------------------------


def find_device(ctx: RequestContext, device_id: str, application_id: str | None) -> DeviceView:
    """The one visible device of this name (and application): 404 when there is none (or the role
    cannot see it), 409 when the name is in several applications and none was given."""
    found = device_views.named(ctx.conn, device_id)
    if application_id is not None:
        found = [d for d in found if d.application_id == application_id]
    if not found:
        raise ApiError(404, "not_found", "no such device")
    if len(found) > 1:
        apps = ", ".join(repr(d.application_id) for d in found)
        raise ApiError(
            409, "ambiguous_device", f"this device_id is in several applications ({apps}): pass application_id"
        )
    return found[0]


def audit_care(ctx: RequestContext, action: str, devices: Sequence[DeviceView], **detail: object) -> None:
    """One audit entry for a view of care data: the care devices among `devices`, by name only."""
    care = [d.label for d in devices if d.is_care]
    if not care:
        return
    p = ctx.principal
    target = f"device:{care[0]}" if len(care) == 1 else None
    audit.record(
        ctx.conn, actor=p.username, actor_role=p.role, action=action, target=target,
        detail={"devices": care, **detail}, ip=ctx.ip,
    )  # fmt: skip


def _audit_write(ctx: RequestContext, action: str, device: DeviceView | None = None, **detail: object) -> None:
    p = ctx.principal
    target = f"device:{device.label}" if device else None
    audit.record(ctx.conn, actor=p.username, actor_role=p.role, action=action, target=target, detail=detail, ip=ctx.ip)


def registry_refusal(errors: Sequence[RegistryError]) -> RequestValidationError:
    """A file's problems as a 422 (dashboard/errors.py's validation body): `loc` is ["body", line,
    column] for each, so a client can point at the cell."""
    return RequestValidationError(
        [{"loc": ("body", e.line, e.column or "row"), "msg": e.reason, "type": "value_error"} for e in errors]
    )


def registry_conflict(errors: Sequence[RegistryError]) -> ApiError:
    """A JSON create or update whose fields are each well formed (the schema checked them: 422 otherwise)
    but which, merged with what is stored, breaks a registry rule: 409, every problem named by field."""
    problems = "; ".join(f"{e.column or 'device'}: {e.reason}" for e in errors)
    return ApiError(409, "registry_conflict", problems)


# --- routes ------------------------------------------------------------------------------------------


@router.get("/devices", summary="Devices you can see, by device_id then application_id")
def list_devices(
    ctx: Acting,
    limit: Limit = 100,
    cursor: Cursor = None,
    kind: Annotated[Kind | None, Query(description="only devices of this kind")] = None,
    state: Annotated[State | None, Query(description="only devices in this state")] = None,
    gateway: Annotated[
        str | None, Query(min_length=1, max_length=128, description="only devices whose newest uplink it heard")
    ] = None,
    application_id: Annotated[str | None, Query(max_length=128, description="only this application")] = None,
) -> Page[DeviceOut]:
    after = decode_cursor(cursor, str, str)
    rows = device_views.page(
        ctx.conn,
        kind=kind,
        state=state,
        gateway=gateway,
        application_id=application_id,
        after=(after[0], after[1]) if after else None,
        limit=limit + 1,
    )
    items, next_cursor = page(rows, limit, key=lambda d: (d.device_id, d.application_id))
    audit_care(ctx, "care_devices_listed", items)
    return Page[DeviceOut](items=[device_out(d) for d in items], next_cursor=next_cursor)


@router.get(
    "/devices/export",
    summary="The devices you can see as a registry CSV file (what `lorawatch devices import` takes)",
    responses=csv_responses("The registry file: device_id, application_id, kind, ... (docs/devices.md)"),
)
def export_devices(ctx: Acting) -> CsvResponse:
    devices = device_views.every(ctx.conn)
    audit_care(ctx, "care_devices_exported", devices)
    return CsvResponse(
        device_views.export_csv(devices), headers={"Content-Disposition": 'attachment; filename="devices.csv"'}
    )


@router.post(
    "/devices/import",
    summary="Create and update devices from a registry CSV file, all or nothing (admin)",
    responses={413: {"model": ErrorBody, "description": f"The file is over {MAX_IMPORT_BYTES} bytes"}},
)
def import_devices(
    ctx: Annotated[RequestContext, require("admin")],
    data: Annotated[bytes, Body(media_type="text/csv", description="a registry file (docs/devices.md)")],
    dry_run: Annotated[bool, Query(description="check against the registry and report; write nothing")] = False,
) -> ImportOut:
    if len(data) > MAX_IMPORT_BYTES:
        raise ApiError(413, "too_large", f"the file is over {MAX_IMPORT_BYTES} bytes: split it")
    result = registry.import_devices(ctx.conn, data, dry_run=dry_run)
    if result.errors:
        raise registry_refusal(result.errors)
    if result.applied:
        _audit_write(ctx, "devices_imported", created=result.created, updated=result.updated)
    return ImportOut(
        created=result.created, updated=result.updated, unchanged=result.unchanged, applied=result.applied,
        dry_run=dry_run,
    )  # fmt: skip


@router.get("/devices/{device_id}", summary="One device", responses={409: _CONFLICT})
def get_device(ctx: Acting, device_id: DeviceIdPath, application_id: ApplicationQuery = None) -> DeviceOut:
    device = find_device(ctx, device_id, application_id)
    audit_care(ctx, "care_device_viewed", [device])
    return device_out(device)


@router.post(
    "/devices",
    status_code=201,
    summary="Register a device (admin)",
    responses={409: {"model": ErrorBody, "description": "The device exists, or its fields break a registry rule"}},
)
def create_device(ctx: Annotated[RequestContext, require("admin")], body: DeviceCreate) -> DeviceOut:
    try:
        result = device_views.create(ctx.conn, body.device_id, body.application_id, body.registry_values())
    except device_views.AlreadyRegistered as exc:
        raise ApiError(409, "already_registered", f"{exc.device.label} is already registered") from None
    if result.errors:
        raise registry_conflict(result.errors)
    device = find_device(ctx, body.device_id, body.application_id)
    _audit_write(ctx, "device_created", device)
    return device_out(device)


@router.patch(
    "/devices/{device_id}",
    summary="Change a device's registry fields (admin)",
    responses={409: {"model": ErrorBody, "description": "Ambiguous device_id, or the fields break a registry rule"}},
)
def update_device(
    ctx: Annotated[RequestContext, require("admin")],
    device_id: DeviceIdPath,
    body: DevicePatch,
    application_id: ApplicationQuery = None,
) -> DeviceOut:
    device = find_device(ctx, device_id, application_id)
    values = body.registry_values()
    if values:
        result = device_views.update(ctx.conn, device, values)
        if result.errors:
            raise registry_conflict(result.errors)
        _audit_write(ctx, "device_updated", device, fields=sorted(values))
    updated = device_views.by_ref(ctx.conn, device.id)
    assert updated is not None  # admin sees every device, and the import kept it
    return device_out(updated)


@router.delete(
    "/devices/{device_id}",
    status_code=204,
    summary="Delete a device that was never heard and has no readings, events or alerts (admin)",
    responses={409: {"model": ErrorBody, "description": "The device has history (or its device_id is ambiguous)"}},
)
def delete_device(
    ctx: Annotated[RequestContext, require("admin")], device_id: DeviceIdPath, application_id: ApplicationQuery = None
) -> Response:
    device = find_device(ctx, device_id, application_id)
    deleted = device_views.delete(ctx.conn, device.id)
    if deleted is None:
        raise ApiError(404, "not_found", "no such device")
    if not deleted:
        raise ApiError(
            409,
            "device_has_history",
            "the device was heard, or has readings, events or alerts: it is kept. To take it out of "
            "service, PATCH its kind to unassigned (admin only from then on)",
        )
    _audit_write(ctx, "device_deleted", device)
    return Response(status_code=204)


__all__ = [
    "AllowingRoute",
    "ApplicationQuery",
    "CsvResponse",
    "DeviceIdPath",
    "audit_care",
    "csv_responses",
    "find_device",
    "router",
]
