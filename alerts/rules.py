"""The alert rule model: what a rules file may say, checked strictly, as frozen typed objects.

A rules file (YAML, `docs/alerts.md` describes it and `docs/rules.example.yaml` shows every key) has
named **routes** (where notifications go), **rules** (what to watch, with a condition kept apart from
its routing) and per-device **overrides**. `load_rules(path)` returns a `RuleSet` or raises
`RulesError` with *every* problem, each as `FILE:LINE: path.to.key: what is wrong`, because a
council's rules file is edited by hand and a rule that silently never fires (a typo in `abov`, a fall
rule routed nowhere) is worse than one that refuses to load.

The evaluators and the engine are built on this model, so it promises them:

- every rule is one of four frozen pydantic models (`ThresholdRule`, `DeviceAlarmRule`,
  `OfflineRule`, `BatteryRule`; `Rule` is their union), with durations as `timedelta` and every
  cross-field invariant already checked (a warning level below its critical level, a route that exists);
- `RuleSet.rules_for(device)` gives the rules that apply to one device with that device's overrides
  (from the rules file, then the registry's `devices.attributes["rules"]`) applied and disabled rules
  dropped, so the engine never merges configuration itself;
- nothing here reads the environment, the clock or the database: routes name environment variables,
  and `Route.resolve(env)` turns them into addresses when the caller hands it the environment.

This module imports only `store` (for the readings' column names), like the rest of `alerts`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, Protocol, TypeAlias, get_args
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from alerts import yamlsource
from alerts.yamlsource import KeyPath
from store.records import READING_COLUMNS

__all__ = [
    "CATEGORIES",
    "DEFAULT_ROUTE",
    "DEFAULT_RULES_FILE",
    "DERIVED_METRICS",
    "ENV_EMAIL_TO",
    "ENV_SMTP_URL",
    "ENV_WEBHOOK_SECRET",
    "ENV_WEBHOOK_URL",
    "EVENT_ATTRS",
    "METRICS",
    "RULE_TYPES",
    "SEVERITIES",
    "AnomalyRule",
    "AppliesTo",
    "BatteryRule",
    "BlockageRule",
    "Category",
    "Delivery",
    "DeviceAlarmRule",
    "DeviceLike",
    "DeviceRef",
    "Email",
    "Escalation",
    "FloodRule",
    "GatewayOfflineRule",
    "Level",
    "OfflineRule",
    "Route",
    "Rule",
    "RuleSet",
    "RulesError",
    "SensorFaultRule",
    "Severity",
    "SiltRule",
    "ThresholdRule",
    "Webhook",
    "WelfareRule",
    "describe",
    "format_duration",
    "load_rules",
    "parse_duration",
    "parse_rules",
]

# --- vocabulary -------------------------------------------------------------------------------------

Category = Literal[
    "flood",
    "rising",
    "blockage",
    "silt",
    "sensor_fault",
    "offline",
    "gateway_offline",
    "battery_low",
    "fall",
    "inactivity",
    "bathroom_dwell",
    "night_activity",
    "anomaly",
]
#: The fixed alert categories (DESIGN.md): dashboards, scoring and notification templates key on them.
CATEGORIES: tuple[str, ...] = get_args(Category)

Severity = Literal["critical", "warning", "info"]
#: Most severe first.
SEVERITIES: tuple[str, ...] = get_args(Severity)

DeviceKind = Literal["gully", "care", "unassigned"]  # the registry's `devices.kind` CHECK constraint

#: Measurements computed from a reading and the gully's registered geometry rather than stored as
#: columns. `level_mm` = sensor_height_mm - distance_mm (the water surface above the pot floor, as the
#: schema defines it); `fill_pct` = 100 x (level_mm - outlet_invert_mm) / (sensor_height_mm -
#: outlet_invert_mm): 0 with water standing at the outlet invert (a trapped gully's normal state),
#: 100 with water at the sensor face. A gully without that geometry has neither. `store.geometry`
#: computes both (docs/devices.md).
DERIVED_METRICS: Mapping[str, str] = MappingProxyType(
    {
        "fill_pct": "water above the outlet invert, as % of the space between invert and sensor",
        "level_mm": "water surface above the gully floor (sensor_height_mm - distance_mm)",
    }
)
#: What a threshold rule may watch: the derived metrics and every column of `readings`.
METRICS: tuple[str, ...] = (*DERIVED_METRICS, *READING_COLUMNS)

#: Milesight VS373 alarm vocabulary, as its decoder (`decoders/milesight_vs373.py`) puts it in the
#: attributes of `Event(kind="alarm")`. Repeated here because `alerts` may not import `decoders`; a
#: test keeps the two in step.
VS373_ALARM_TYPES: tuple[str, ...] = (
    "fall",
    "motionless",
    "dwell",
    "out_of_bed",
    "occupied",
    "vacant",
    "bradynea",
    "tachypnea",
    "lying_down",
    "unknown",
)
VS373_ALARM_STATUSES: tuple[str, ...] = (
    "alarm_triggered",
    "alarm_deactivated",
    "alarm_ignored",
    "respiratory_status",
    "unknown",
)

#: Event kinds the decoders emit -> the attributes such an event may carry -> their possible values
#: (None: any value). A `device_alarm` rule may only match on these, so a misspelt `alarm_type: fal`
#: is an error at load instead of a fall rule that never fires. Kept in step with the decoders by a test.
EVENT_ATTRS: Mapping[str, Mapping[str, tuple[str, ...] | None]] = MappingProxyType(
    {
        "alarm": MappingProxyType(  # Milesight VS373 live (06 FB) and history (20 CE) alarms
            {
                "alarm_id": None,
                "alarm_type": VS373_ALARM_TYPES,
                "alarm_status": VS373_ALARM_STATUSES,
                "region_id": None,
            }
        ),
        "distance_alarm": MappingProxyType(  # Milesight EM410/EM500 threshold alarms, Dragino LMDS200
            {
                "distance_alarm": None,
                "distance": None,
                "distance_mutation": None,
                "DALARM_count": None,
                "dis1": None,
                "dis2": None,
            }
        ),
        "distance_exception": MappingProxyType({"distance_exception": None}),  # Milesight EM410 blind spot
        "device_reset": MappingProxyType({}),  # Milesight EM-series power-on/reset record
    }
)
EventKind = Literal["alarm", "distance_alarm", "distance_exception", "device_reset"]

#: The route every rule without `route:` uses; unless the file defines it, it is the channels
#: configured in the environment (the four variables below).
DEFAULT_ROUTE = "default"
ENV_WEBHOOK_URL = "LORAWATCH_WEBHOOK_URL"
ENV_WEBHOOK_SECRET = "LORAWATCH_WEBHOOK_SECRET"  # noqa: S105 (the variable's name, not a secret)
ENV_SMTP_URL = "LORAWATCH_SMTP_URL"
ENV_EMAIL_TO = "LORAWATCH_EMAIL_TO"

#: The rules used when `LORAWATCH_RULES_FILE` is unset (shipped in the wheel as package data).
DEFAULT_RULES_FILE = Path(__file__).with_name("default_rules.yaml")

#: Rule keys an override may not change: they say what the rule *is*, not how it is tuned for a device.
FIXED_KEYS = frozenset({"name", "type", "category", "applies_to"})

# --- durations --------------------------------------------------------------------------------------

_UNITS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:\d+[wdhms])+")
_PART = re.compile(r"(\d+)([wdhms])")


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `2h`, `1d`, `1w`, or a sum such as `1h30m`, as a timedelta.

    A bare number is refused: `for: 5` could mean seconds or minutes, and guessing wrong by 60x in
    an alert rule is exactly the mistake strict loading is for.
    """
    compact = text.strip().lower()
    if not _DURATION.fullmatch(compact):
        msg = f"{text!r} is not a duration: write a number and a unit, e.g. 30s, 5m, 2h or 1d"
        raise ValueError(msg)
    return timedelta(seconds=sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(compact)))


def format_duration(value: timedelta) -> str:
    """The shortest `1h30m`-style text for `value` (whole seconds), as a rules file would write it."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for unit, size in _UNITS.items():
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def _duration(value: object) -> object:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    msg = f"{value!r} is not a duration: write a number and a unit, e.g. 30s, 5m, 2h or 1d"
    raise ValueError(msg)


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
PositiveDuration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive)]

# --- small types ------------------------------------------------------------------------------------

_NAME = re.compile(r"[a-z0-9_-]+")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        msg = f"{value!r} is not a valid name: use lowercase letters, digits, '_' and '-'"
        raise ValueError(msg)
    return value


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        msg = f"{value!r} is not an environment variable name (capitals, digits and '_', e.g. LORAWATCH_WEBHOOK_SECRET)"
        raise ValueError(msg)
    return value


def _one_or_many(value: object) -> object:
    """Let a list of one be written as the item itself (`route: highways`, `devices: gully-0001`)."""
    return (value,) if isinstance(value, str | int) and not isinstance(value, bool) else value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _email(value: str) -> str:
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value


Name = Annotated[str, AfterValidator(_name)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Number = Annotated[float, Strict(), AfterValidator(_finite)]  # strict: `above: yes` is not 1.0
Count = Annotated[int, Strict(), Field(ge=1)]
Flag = Annotated[bool, Strict()]
Strings = Annotated[tuple[str, ...], BeforeValidator(_one_or_many)]
RouteRefs = Annotated[tuple[Name, ...], BeforeValidator(_one_or_many), Field(min_length=1)]
AttrValues = Annotated[tuple[str | int, ...], BeforeValidator(_one_or_many), Field(min_length=1)]


def _known_metric(value: str) -> str:
    if value not in METRICS:
        close = difflib.get_close_matches(value, METRICS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown metric {value!r} ({hint}one of: {', '.join(METRICS)})")
    return value


class RuleFieldError(ValueError):
    """A cross-field check that fails because of one key: `path` (relative to the model) names it, so
    the message points at that key's line rather than at the start of the rule."""

    def __init__(self, path: KeyPath, message: str) -> None:
        super().__init__(message)
        self.path = path


class _Model(BaseModel):
    """Strict about keys (`extra="forbid"`: a typo is an error, never ignored) and immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- devices ----------------------------------------------------------------------------------------


class DeviceLike(Protocol):
    """What rule selection needs to know about a device; `store.records.Device` is one."""

    @property
    def device_id(self) -> str: ...
    @property
    def application_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def care_group(self) -> str | None: ...
    @property
    def attributes(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """A plain `DeviceLike`, for callers without a registry row (tests, `score` on a capture)."""

    device_id: str
    application_id: str = ""
    kind: str = "unassigned"
    care_group: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


class AppliesTo(_Model):
    """Which devices a rule watches. Every filter given must match (AND); within one list any entry
    may (OR); an omitted filter matches everything. `devices` entries are a `device_id`, or
    `application_id/device_id` where one name is used in two applications."""

    kind: DeviceKind | None = None
    devices: Strings = ()
    groups: Strings = ()  # the registry's care_group
    applications: Strings = ()

    def matches(self, device: DeviceLike) -> bool:
        if self.kind is not None and device.kind != self.kind:
            return False
        if self.devices and not (
            device.device_id in self.devices or f"{device.application_id}/{device.device_id}" in self.devices
        ):
            return False
        if self.groups and device.care_group not in self.groups:
            return False
        return not self.applications or device.application_id in self.applications


# --- routes -----------------------------------------------------------------------------------------


class Webhook(_Model):
    """An HTTP POST of the alert as JSON. With `secret_env`, the body is signed with HMAC-SHA256 using
    that environment variable's value (secrets never go in the rules file)."""

    url: Annotated[str, AfterValidator(_http_url)] | None = None
    url_env: EnvName | None = None
    secret_env: EnvName | None = None

    @model_validator(mode="after")
    def _one_url(self) -> Webhook:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give url or url_env (exactly one)")
        return self


class Email(_Model):
    """An email through the SMTP server in `smtp_url_env` (default `LORAWATCH_SMTP_URL`)."""

    to: Annotated[tuple[Annotated[str, AfterValidator(_email)], ...], BeforeValidator(_one_or_many)] = ()
    to_env: EnvName | None = None  # a comma-separated list of addresses
    smtp_url_env: EnvName | None = None

    @model_validator(mode="after")
    def _one_to(self) -> Email:
        if bool(self.to) == (self.to_env is not None):
            raise ValueError("give to or to_env (exactly one)")
        return self


@dataclass(frozen=True, slots=True)
class Delivery:
    """A route's channels with the environment applied: what a notifier needs to send.

    `missing` lists environment variables the route names (or, for the default channels, would use)
    that are unset; a route whose `webhook_url` and `email_to` are both empty delivers nowhere."""

    route: str
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    email_to: tuple[str, ...] = ()
    smtp_url: str | None = field(default=None, repr=False)  # may carry a password
    send_resolved: bool = True
    missing: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.webhook_url is None and not self.email_to


class Route(_Model):
    """A named set of channels. Conditions never name channels, only routes, so re-pointing a team's
    notifications is one edit. A route with neither `webhook` nor `email` (written `name: {}` or
    `name:`) uses the default channels from the environment: the webhook `LORAWATCH_WEBHOOK_URL`
    (signed with `LORAWATCH_WEBHOOK_SECRET` if set) and mail to `LORAWATCH_EMAIL_TO` through
    `LORAWATCH_SMTP_URL`."""

    webhook: Webhook | None = None
    email: Email | None = None
    send_resolved: Flag = True  # also notify when the alert resolves

    @property
    def uses_default_channels(self) -> bool:
        return self.webhook is None and self.email is None

    def resolve(self, name: str, env: Mapping[str, str]) -> Delivery:
        """The addresses this route delivers to, given the environment (pass `os.environ`, or a test's
        dict). Pure: the caller owns the environment."""
        missing: list[str] = []

        def get(var: str | None) -> str | None:
            if var is None:
                return None
            value = env.get(var, "").strip()
            if not value:
                missing.append(var)
            return value or None

        webhook: Webhook | None
        if self.uses_default_channels:
            webhook = Webhook(url_env=ENV_WEBHOOK_URL, secret_env=ENV_WEBHOOK_SECRET)
            email: Email | None = Email(to_env=ENV_EMAIL_TO)
        else:
            webhook, email = self.webhook, self.email
        url = secret = smtp = None
        to: tuple[str, ...] = ()
        if webhook is not None:
            url = webhook.url or get(webhook.url_env)
            secret = env.get(webhook.secret_env or "", "").strip() or None
            if webhook.secret_env and secret is None and not self.uses_default_channels:
                missing.append(webhook.secret_env)
        if email is not None:
            listed = email.to or tuple(a.strip() for a in (get(email.to_env) or "").split(",") if a.strip())
            if listed:
                smtp = get(email.smtp_url_env or ENV_SMTP_URL)
                to = listed if smtp else ()
        return Delivery(name, url, secret, to, smtp, self.send_resolved, tuple(missing))


class Escalation(_Model):
    """If nobody has acknowledged the alert `after` this long since it fired, notify `route` too."""

    after: PositiveDuration
    route: RouteRefs


# --- rules ------------------------------------------------------------------------------------------


class _Rule(_Model):
    """What every rule type has: identity, the devices it watches and the routing of its alerts."""

    #: Categories a rule of this type may use (None: any).
    allowed_categories: ClassVar[tuple[str, ...] | None] = None

    name: Name
    category: Category
    description: str | None = None
    disabled: Flag = False
    applies_to: AppliesTo = AppliesTo()
    route: RouteRefs = (DEFAULT_ROUTE,)
    repeat_every: PositiveDuration | None = None  # re-notify while unacknowledged; None = never
    escalate: tuple[Escalation, ...] = ()
    #: Alerts from simulated uplinks (the TTS console's "simulate uplink"): `record` opens them marked
    #: simulated but notifies no one (a simulated alert never reaches a real channel); `ignore` does not
    #: evaluate them.
    simulated: Literal["record", "ignore"] = "record"
    #: `false`: the rule's alerts are recorded (and scored) but notify nobody (anomaly records).
    page: Flag = True

    @model_validator(mode="after")
    def _routing(self) -> _Rule:
        if self.allowed_categories is not None and self.category not in self.allowed_categories:
            allowed = ", ".join(self.allowed_categories)
            raise RuleFieldError(("category",), f"{_a(self._type())} rule's category must be {allowed}")
        for i in range(1, len(self.escalate)):
            if self.escalate[i].after <= self.escalate[i - 1].after:
                msg = (
                    f"escalation steps must come later and later: {format_duration(self.escalate[i].after)} "
                    f"is not after {format_duration(self.escalate[i - 1].after)}"
                )
                raise RuleFieldError(("escalate", i, "after"), msg)
        return self

    @property
    def routes(self) -> tuple[str, ...]:
        """Every route this rule can notify: its own, then its escalation steps', without repeats."""
        names = [*self.route, *(r for step in self.escalate for r in step.route)]
        return tuple(dict.fromkeys(names))

    @classmethod
    def _type(cls) -> str:
        return str(get_args(cls.model_fields["type"].annotation)[0])


class Level(_Model):
    """One threshold: `above: X` (entered when the value is greater than X) or `below: X` (less)."""

    above: Number | None = None
    below: Number | None = None

    @model_validator(mode="after")
    def _one(self) -> Level:
        if (self.above is None) == (self.below is None):
            raise ValueError("give above or below (exactly one)")
        return self

    @property
    def direction(self) -> Literal["above", "below"]:
        return "above" if self.above is not None else "below"

    @property
    def value(self) -> float:
        value = self.above if self.above is not None else self.below
        assert value is not None
        return value

    def reached(self, value: float) -> bool:
        return value > self.value if self.direction == "above" else value < self.value


class ThresholdRule(_Rule):
    """A metric past a warning and/or critical level for at least `for`.

    Severity comes from the level reached. A level is left once the value is back past its threshold
    by `hysteresis` (so a reading jittering on the line does not flap the alert); `clear`, if given,
    is where the alert resolves instead of the lowest level's threshold minus hysteresis. After the
    condition stops holding, the alert stays open for `keep_firing_for` (a wave of water slopping
    back over the threshold within that time is one flood, not two).
    """

    type: Literal["threshold"]
    metric: str
    warning: Level | None = None
    critical: Level | None = None
    hysteresis: Annotated[Number, Field(ge=0)] = 0.0
    clear: Level | None = None
    for_: Duration = Field(default=timedelta(0), alias="for")
    keep_firing_for: Duration = timedelta(0)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return _known_metric(value)

    @model_validator(mode="after")
    def _levels(self) -> ThresholdRule:
        if self.warning is None and self.critical is None:
            raise ValueError("a threshold rule needs a warning or a critical level (or both)")
        levels = self.levels()
        if self.metric.endswith("_pct"):
            for key, level in levels:
                if not 0 <= level.value <= 100:
                    raise RuleFieldError((key, level.direction), f"{self.metric} is a percentage: 0 to 100")
        if self.warning is not None and self.critical is not None:
            w, c = self.warning, self.critical
            if w.direction != c.direction:
                raise RuleFieldError(("critical",), f"warning is {w.direction} and critical is {c.direction}: use one")
            if c.reached(w.value) or w.value == c.value:
                side = "below" if w.direction == "above" else "above"
                msg = (
                    f"warning threshold {w.value:g} must be {side} critical threshold {c.value:g} "
                    f"(in {_a(repr(w.direction))} rule warning comes first)"
                )
                raise RuleFieldError(("warning",), msg)
        if self.clear is not None:
            lowest = levels[0][1]
            if self.clear.direction == lowest.direction:
                opposite = "below" if lowest.direction == "above" else "above"
                raise RuleFieldError(("clear",), f"the levels are '{lowest.direction}', so clear must be '{opposite}'")
            if lowest.reached(self.clear.value):
                msg = (
                    f"clear {self.clear.direction} {self.clear.value:g} is inside the {levels[0][0]} level "
                    f"({lowest.direction} {lowest.value:g}): the alert would resolve while still firing"
                )
                raise RuleFieldError(("clear", self.clear.direction), msg)
        return self

    @property
    def direction(self) -> Literal["above", "below"]:
        return self.levels()[0][1].direction

    def levels(self) -> tuple[tuple[Severity, Level], ...]:
        """(severity, level) from the least severe level to the most."""
        found: list[tuple[Severity, Level]] = []
        if self.warning is not None:
            found.append(("warning", self.warning))
        if self.critical is not None:
            found.append(("critical", self.critical))
        return tuple(found)

    def severity_at(self, value: float) -> Severity | None:
        """The most severe level `value` enters, or None: the rule's condition on one value."""
        reached = [sev for sev, level in self.levels() if level.reached(value)]
        return reached[-1] if reached else None

    def exit_value(self, severity: Severity) -> float:
        """Where the `severity` level is left: its threshold moved back by `hysteresis`, or, for the
        least severe level, `clear` when given."""
        levels = self.levels()
        for i, (sev, level) in enumerate(levels):
            if sev == severity:
                if i == 0 and self.clear is not None:
                    return self.clear.value
                return level.value - self.hysteresis if level.direction == "above" else level.value + self.hysteresis
        raise ValueError(f"rule {self.name!r} has no {severity} level")

    def holds(self, severity: Severity, value: float) -> bool:
        """True while `value` has not yet left the `severity` level (the hysteresis band counts)."""
        edge = self.exit_value(severity)
        return value >= edge if self.direction == "above" else value <= edge


class DeviceAlarmRule(_Rule):
    """An alarm the device raises itself (the VS373's fall detection), keyed by the device's own id.

    The decoders turn a VS373 alarm into `Event(kind="alarm")` with attributes `alarm_id`,
    `alarm_type` (`fall`, ...) and `alarm_status` (`alarm_triggered`, `alarm_deactivated`, ...). An
    event of kind `event` whose attributes equal every `match` entry is this rule's; with a
    `status_attr`, a status in `opens_on` opens an alert and one in `clears_on` records that the device
    cleared it (`on_device_clear: resolve` also resolves the alert; the default `record` leaves it for
    a person to acknowledge, as a fall must be). `id_attr` names the attribute identifying one alarm,
    so a re-sent history record or a duplicate uplink of the same alarm never opens a second alert.
    For `event: alarm` these default to the VS373's: `alarm_id`, `alarm_status`, opens on
    `alarm_triggered`, clears on `alarm_deactivated`. A `fall` rule repeats every 2 minutes until
    acknowledged unless it says otherwise (`repeat_every: null` turns that off).
    """

    type: Literal["device_alarm"]
    event: EventKind
    match: Mapping[str, AttrValues] = Field(default_factory=lambda: MappingProxyType({}))
    id_attr: str | None = None
    status_attr: str | None = None
    opens_on: Strings = ()
    clears_on: Strings = ()
    on_device_clear: Literal["record", "resolve"] = "record"
    severity: Severity = "critical"

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("event") == "alarm":
            data.setdefault("id_attr", "alarm_id")
            data.setdefault("status_attr", "alarm_status")
            if data["status_attr"] is not None:  # `status_attr: null`: every matching alarm opens
                data.setdefault("opens_on", ("alarm_triggered",))
                data.setdefault("clears_on", ("alarm_deactivated",))
        if data.get("category") == "fall":
            data.setdefault("repeat_every", "2m")
        return data

    @field_validator("match", mode="after")
    @classmethod
    def _freeze(cls, value: Mapping[str, tuple[str | int, ...]]) -> Mapping[str, tuple[str | int, ...]]:
        return MappingProxyType(dict(value))

    @model_validator(mode="after")
    def _attributes(self) -> DeviceAlarmRule:
        known = EVENT_ATTRS[self.event]
        names = ", ".join(known) or "none"
        for key, values in self.match.items():
            if key not in known:
                msg = f"{self.event} events have no attribute {key!r} (they have: {names})"
                raise RuleFieldError(("match", key), msg)
            allowed = known[key]
            for value in values:
                if allowed is not None and value not in allowed:
                    msg = f"{value!r} is not {_a(key)} of {self.event} events (one of: {', '.join(allowed)})"
                    raise RuleFieldError(("match", key), msg)
        for key in ("id_attr", "status_attr"):
            attr = getattr(self, key)
            if attr is not None and attr not in known:
                raise RuleFieldError((key,), f"{self.event} events have no attribute {attr!r} (they have: {names})")
        if self.status_attr is None:
            if self.opens_on or self.clears_on:
                raise RuleFieldError(("opens_on",), "opens_on and clears_on need a status_attr")
            return self
        if not self.opens_on:
            raise RuleFieldError(("opens_on",), "name at least one status that opens the alert")
        statuses = known[self.status_attr]
        for key in ("opens_on", "clears_on"):
            for status in getattr(self, key):
                if statuses is not None and status not in statuses:
                    one_of = ", ".join(statuses)
                    msg = f"{status!r} is not {_a(str(self.status_attr))} of {self.event} events (one of: {one_of})"
                    raise RuleFieldError((key,), msg)
        both = set(self.opens_on) & set(self.clears_on)
        if both:
            raise RuleFieldError(("clears_on",), f"{', '.join(sorted(both))} cannot both open and clear")
        return self

    def matches(self, kind: str, attrs: Mapping[str, Any]) -> bool:
        """True when an event of `kind` with `attrs` belongs to this rule (whatever its status)."""
        return kind == self.event and all(attrs.get(key) in values for key, values in self.match.items())

    def action(self, attrs: Mapping[str, Any]) -> Literal["open", "clear"] | None:
        """What a matching event does: open an alert, record the device's clear, or nothing (an
        `alarm_ignored`, a status report). Without a `status_attr`, every matching event opens."""
        if self.status_attr is None:
            return "open"
        status = attrs.get(self.status_attr)
        if status in self.opens_on:
            return "open"
        return "clear" if status in self.clears_on else None

    def alarm_key(self, attrs: Mapping[str, Any]) -> str | None:
        """The device's own identity of this alarm (its `id_attr` value as text), or None."""
        if self.id_attr is None or attrs.get(self.id_attr) is None:
            return None
        return str(attrs[self.id_attr])


class OfflineRule(_Rule):
    """No uplink for `missed` expected intervals, judged on the clock (not on data that never comes).

    The interval is the device attribute named by `interval_attribute` when the registry has it (a
    duration such as `20m`, or seconds), otherwise `expected_interval`."""

    allowed_categories: ClassVar[tuple[str, ...] | None] = ("offline",)

    type: Literal["offline"]
    expected_interval: PositiveDuration
    missed: Count = 3
    #: added to the silence: a device's reports wander by seconds, so the `missed`-th report may land
    #: just after `missed` intervals; without a grace two lost uplinks and a late third page someone
    grace: Duration = timedelta(0)
    interval_attribute: str | None = "uplink_interval"
    severity: Severity = "warning"

    def interval_for(self, attributes: Mapping[str, Any]) -> timedelta:
        """The device's own interval from its attributes if usable, else `expected_interval`."""
        raw = attributes.get(self.interval_attribute) if self.interval_attribute else None
        if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw) and raw > 0:
            return timedelta(seconds=raw)
        if isinstance(raw, str):
            try:
                value = parse_duration(raw)
            except ValueError:
                return self.expected_interval
            if value > timedelta(0):
                return value
        return self.expected_interval

    def silent_after(self, attributes: Mapping[str, Any]) -> timedelta:
        """How long without an uplink before the device counts as offline."""
        return self.interval_for(attributes) * self.missed + self.grace


class BatteryRule(_Rule):
    """Battery below `below_v` volts or `below_pct` percent (whichever the device reports) for `for`.

    It clears when the battery is back above `clear_above_v` / `clear_above_pct` (default: the
    threshold itself), normally because someone replaced it; a cold night's dip is what `for` is for."""

    allowed_categories: ClassVar[tuple[str, ...] | None] = ("battery_low",)

    type: Literal["battery"]
    below_v: Annotated[Number, Field(gt=0, le=5.5)] | None = None
    below_pct: Annotated[Number, Field(gt=0, le=100)] | None = None
    clear_above_v: Annotated[Number, Field(gt=0, le=5.5)] | None = None
    clear_above_pct: Annotated[Number, Field(gt=0, le=100)] | None = None
    for_: Duration = Field(default=timedelta(0), alias="for")
    keep_firing_for: Duration = timedelta(0)
    severity: Severity = "warning"

    @model_validator(mode="after")
    def _thresholds(self) -> BatteryRule:
        if self.below_v is None and self.below_pct is None:
            raise ValueError("a battery rule needs below_v or below_pct (or both)")
        for unit in ("v", "pct"):
            below, clear = getattr(self, f"below_{unit}"), getattr(self, f"clear_above_{unit}")
            if clear is not None and below is None:
                raise RuleFieldError((f"clear_above_{unit}",), f"clear_above_{unit} needs below_{unit}")
            if clear is not None and clear < below:
                msg = f"clear_above_{unit} {clear:g} must not be below below_{unit} {below:g}"
                raise RuleFieldError((f"clear_above_{unit}",), msg)
        return self

    def low(self, battery_v: float | None, battery_pct: float | None) -> bool:
        """True when either reported value is under its threshold."""
        return (self.below_v is not None and battery_v is not None and battery_v < self.below_v) or (
            self.below_pct is not None and battery_pct is not None and battery_pct < self.below_pct
        )

    def recovered(self, battery_v: float | None, battery_pct: float | None) -> bool:
        """True when a reported value is back above its clear level (and none is still low)."""
        if self.low(battery_v, battery_pct):
            return False
        checks = [
            (battery_v, self.clear_above_v if self.clear_above_v is not None else self.below_v),
            (battery_pct, self.clear_above_pct if self.clear_above_pct is not None else self.below_pct),
        ]
        return any(value is not None and edge is not None and value >= edge for value, edge in checks)


class FloodRule(_Rule):
    """Gully flood physics (docs/detection.md): fill % from the gully's geometry, past a warning and/or
    critical level, confirmed by `confirm` consecutive readings in the level, so one bad echo never
    opens a flood. A reading that implies the water moved faster than `max_gradient_mm_per_min`
    (FloodNet rejects about 254 mm/min) is not water and is skipped, as is a single-point spike (one
    reading far from both neighbours, which agree). A step from rest straight onto a dead-flat plateau
    (a parked vehicle over the grate) confirms nothing until the surface moves as water does. After the
    water drops below the level (less `hysteresis`) the alert holds for `keep_firing_for`."""

    allowed_categories: ClassVar[tuple[str, ...] | None] = ("flood",)

    type: Literal["flood"]
    warning: Level | None = None
    critical: Level | None = None
    hysteresis: Annotated[Number, Field(ge=0)] = 5.0
    confirm: Count = 2
    max_gradient_mm_per_min: Annotated[Number, Field(gt=0)] = 254.0
    spike_mm: Annotated[Number, Field(gt=0)] = 100.0
    rest_pct: Annotated[Number, Field(ge=0, le=100)] = 10.0
    plateau_mm: Annotated[Number, Field(ge=0)] = 3.0
    keep_firing_for: Duration = timedelta(minutes=30)

    @model_validator(mode="after")
    def _levels(self) -> FloodRule:
        levels = [(k, v) for k, v in (("warning", self.warning), ("critical", self.critical)) if v is not None]
        if not levels:
            raise ValueError("a flood rule needs a warning or a critical level (or both)")
        for key, level in levels:
            if level.above is None:
                raise RuleFieldError((key,), "a flood level is `above: <fill %>`")
            if not 0 <= level.value <= 100:
                raise RuleFieldError((key, "above"), "fill_pct is a percentage: 0 to 100")
        if self.warning is not None and self.critical is not None and self.critical.value <= self.warning.value:
            raise RuleFieldError(("warning",), "the warning level must be below the critical level")
        return self

    def levels(self) -> tuple[tuple[Severity, float], ...]:
        """(severity, fill %) from the least severe level to the most."""
        return self.level_table

    @cached_property
    def level_table(self) -> tuple[tuple[Severity, float], ...]:
        """`levels()`, worked out once (the flood detector asks at every reading; the rule is frozen)."""
        out: list[tuple[Severity, float]] = []
        if self.warning is not None:
            out.append(("warning", self.warning.value))
        if self.critical is not None:
            out.append(("critical", self.critical.value))
        return tuple(out)


class SensorFaultRule(_Rule):
    """A level sensor not measuring water (docs/detection.md): no echo for `no_echo_for`; tilted in
    `tilt_readings` readings running; the same distance for far longer than this device has ever
    repeated one (`stuck_factor` x its longest run, at least `stuck_min_for`); `spikes` single-point
    spikes within `spike_window`; a step from rest onto a dead-flat plateau lasting `obstruction_for`
    (something over the grate). One alert per device, with the reason; it resolves once the sensor has
    read normally for `clear_after`."""

    allowed_categories: ClassVar[tuple[str, ...] | None] = ("sensor_fault",)

    type: Literal["sensor_fault"]
    no_echo_for: PositiveDuration = timedelta(hours=1)
    tilt_readings: Count = 2
    stuck_min_for: PositiveDuration = timedelta(hours=4)
    stuck_factor: Annotated[Number, Field(ge=1)] = 3.0
    spikes: Count = 3
    spike_window: PositiveDuration = timedelta(hours=24)
    spike_mm: Annotated[Number, Field(gt=0)] = 100.0
    max_gradient_mm_per_min: Annotated[Number, Field(gt=0)] = 254.0
    obstruction_for: PositiveDuration = timedelta(minutes=45)
    rest_pct: Annotated[Number, Field(ge=0, le=100)] = 10.0
    plateau_mm: Annotated[Number, Field(ge=0)] = 3.0
    clear_after: PositiveDuration = timedelta(hours=1)
    severity: Severity = "warning"


class BlockageRule(_Rule):
    """ "Not draining": a storm's recession much slower than this gully's own drain time. The drain time
    (the e-folding time of the water above the outlet invert) is learned per gully from its earlier
    recessions and stored; until `learn_from` recessions are known, `cold_start_drain_time` stands in
    for it. A recession whose fitted time is over `factor` x the learned one, over at least
    `min_points` readings spanning `min_span`, opens the alert; a later normal recession resolves it."""

    allowed_categories: ClassVar[tuple[str, ...] | None] = ("blockage",)

    type: Literal["blockage"]
    factor: Annotated[Number, Field(gt=1)] = 4.0
    min_peak_mm: Annotated[Number, Field(gt=0)] = 40.0
    floor_mm: Annotated[Number, Field(gt=0)] = 10.0
    min_points: Count = 3
    min_span: PositiveDuration = timedelta(minutes=30)
    learn_from: Count = 2
    cold_start_drain_time: PositiveDuration = timedelta(hours=2)
    severity: Severity = "warning"


class SiltRule(_Rule):
    """Silt creep: the dry-weather level drifting up over days. Each day's dry level (a low quantile of
    the day's readings) is kept per gully; a robust (Theil-Sen) slope over the last `window` days of at
    least `min_mm_per_day`, with the level at least `min_rise_mm` above the gully's learned clean
    level, opens the alert; a cleanse (the dry level back within `min_rise_mm / 2`) resolves it."""

    allowed_categories: ClassVar[tuple[str, ...] | None] = ("silt",)

    type: Literal["silt"]
    window: PositiveDuration = timedelta(days=7)
    min_days: Count = 4
    min_mm_per_day: Annotated[Number, Field(gt=0)] = 2.0
    min_rise_mm: Annotated[Number, Field(gt=0)] = 25.0
    quantile: Annotated[Number, Field(gt=0, lt=1)] = 0.1
    severity: Severity = "info"


class GatewayOfflineRule(_Rule):
    """A gateway down: every device recently heard only through it (at least `min_devices`) silent
    together, each for at least `silent_fraction` of its offline rule's silence. One alert for the
    gateway; the device `offline` alerts it explains are held back; the gateway's devices being heard
    again resolves it."""

    allowed_categories: ClassVar[tuple[str, ...] | None] = ("gateway_offline",)

    type: Literal["gateway_offline"]
    min_devices: Count = 2
    recent: PositiveDuration = timedelta(hours=24)
    silent_fraction: Annotated[Number, Field(gt=0, le=1)] = 0.6
    severity: Severity = "warning"


class WelfareRule(_Rule):
    """Welfare for one flat (`care_group`), learned from the flat's own sensors (docs/detection.md).

    `watch: inactivity`: no activity during the day (`day` hours) for `factor` x the longest quiet
    spell usual at that hour (at least `min_for`); `bathroom_dwell`: the bathroom occupied `factor` x
    longer than the flat's usual longest visit (at least `min_for`); `night_activity`: activity outside
    the bedroom and bathroom at night (`night` hours) in `window`, `factor` x the flat's usual (at
    least `min_events`). Until `learn_days` days are known, the minimums alone apply."""

    allowed_categories: ClassVar[tuple[str, ...] | None] = ("inactivity", "bathroom_dwell", "night_activity")

    type: Literal["welfare"]
    watch: Literal["inactivity", "bathroom_dwell", "night_activity"]
    factor: Annotated[Number, Field(gt=1)] = 2.0
    min_for: PositiveDuration = timedelta(hours=2)
    min_events: Count = 4
    window: PositiveDuration = timedelta(minutes=30)
    day: tuple[Annotated[int, Field(ge=0, le=24)], Annotated[int, Field(ge=0, le=24)]] = (8, 21)
    night: tuple[Annotated[int, Field(ge=0, le=24)], Annotated[int, Field(ge=0, le=24)]] = (0, 5)
    learn_days: Count = 3
    severity: Severity = "warning"

    @model_validator(mode="after")
    def _watch(self) -> WelfareRule:
        if self.category != self.watch:
            raise RuleFieldError(("category",), f"a welfare rule watching {self.watch} has category {self.watch}")
        return self


class AnomalyRule(_Rule):
    """A reading far outside the device's own normal: a streaming median and MAD of `metric` (and of
    its rate of change), learned online per device and stored. A value more than `k` robust standard
    deviations (1.4826 x MAD, at least `min_scale`) from the median opens a record. By default it
    pages nobody (`page: false`): it is for the record and for tuning."""

    allowed_categories: ClassVar[tuple[str, ...] | None] = ("anomaly",)

    type: Literal["anomaly"]
    metric: str
    k: Annotated[Number, Field(gt=0)] = 8.0
    min_scale: Annotated[Number, Field(gt=0)] = 5.0
    rate: Flag = True
    learn_readings: Count = 96
    clear_after: PositiveDuration = timedelta(hours=1)
    severity: Severity = "info"

    page: Flag = False

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        return _known_metric(value)


Rule: TypeAlias = (
    ThresholdRule
    | DeviceAlarmRule
    | OfflineRule
    | BatteryRule
    | FloodRule
    | SensorFaultRule
    | BlockageRule
    | SiltRule
    | GatewayOfflineRule
    | WelfareRule
    | AnomalyRule
)
#: `type:` -> model. The evaluators dispatch on the model's class.
RULE_TYPES: Mapping[str, type[Rule]] = MappingProxyType(
    {
        "threshold": ThresholdRule,
        "device_alarm": DeviceAlarmRule,
        "offline": OfflineRule,
        "battery": BatteryRule,
        "flood": FloodRule,
        "sensor_fault": SensorFaultRule,
        "blockage": BlockageRule,
        "silt": SiltRule,
        "gateway_offline": GatewayOfflineRule,
        "welfare": WelfareRule,
        "anomaly": AnomalyRule,
    }
)

# --- the rule set -----------------------------------------------------------------------------------


class RulesError(Exception):
    """A rules file that cannot be used. `messages` holds every problem, `FILE:LINE: key: what`."""

    def __init__(self, messages: Iterable[str]) -> None:
        self.messages: tuple[str, ...] = tuple(messages)
        super().__init__("\n".join(self.messages))


@dataclass(frozen=True)
class RuleSet:
    """A loaded rules file: its rules in file order, its routes (with `default` always present) and
    its per-device overrides (device key -> rule name -> the rule as that device sees it).

    `rules_for(device)` is the engine's entry point; it caches per distinct override, so calling it
    for every reading costs a dictionary lookup after the first."""

    source: str
    rules: tuple[Rule, ...]
    routes: Mapping[str, Route]
    overrides: Mapping[str, Mapping[str, Rule]]
    #: Each rule as written (before validation), and each file override's keys: the registry's overrides
    #: are merged into these, so a device sees exactly what writing its override into the file would give.
    _written: Mapping[str, Mapping[str, Any]] = field(repr=False, compare=False)
    _file_overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(repr=False, compare=False)
    _cache: dict[tuple[str, str], Rule | tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def by_name(self) -> Mapping[str, Rule]:
        """The rules by name, as the file wrote them."""
        return MappingProxyType({rule.name: rule for rule in self.rules})

    def rule(self, name: str) -> Rule:
        """The rule called `name` as the file wrote it (KeyError if there is none)."""
        return self.by_name[name]

    def route(self, name: str) -> Route:
        return self.routes[name]

    def rules_for(self, device: DeviceLike) -> tuple[Rule, ...]:
        """The rules that watch `device`, tuned for it, in file order.

        `applies_to` selects; then the file's overrides for the device (`device_id`, then the more
        specific `application_id/device_id`) and the registry's (`device.attributes["rules"]`, same
        shape) replace whole keys of the rule, later ones winning; a rule left `disabled` is dropped.
        A registry override that does not validate is ignored (the rule applies as the file says, so a
        bad attribute never silences a fall alarm) and reported by `problems_for`.
        """
        out = []
        for rule in self.rules:
            if not rule.applies_to.matches(device):
                continue
            tuned = self._tuned(rule, device)
            if not tuned.disabled:
                out.append(tuned)
        return tuple(out)

    def problems_for(self, device: DeviceLike) -> tuple[str, ...]:
        """What is wrong with `device.attributes["rules"]` (empty when nothing is), for the registry's
        import and the alert worker's log."""
        raw = device.attributes.get("rules")
        if raw is None:
            return ()
        prefix = f"device {device.device_id}: attributes.rules"
        if not isinstance(raw, Mapping):
            return (f"{prefix}: must be a mapping of rule name to override",)
        problems: list[str] = []
        for name, override in raw.items():
            if name not in self.by_name:
                problems.append(f"{prefix}.{name}: no rule named {name!r} (defined: {', '.join(self.by_name)})")
                continue
            rule = self.by_name[name]
            if not rule.applies_to.matches(device):
                continue
            result = self._registry_tuned(rule, device, override)
            if isinstance(result, tuple):
                problems.extend(f"{prefix}.{name}{m}" for m in result)
        return tuple(problems)

    def delivery(self, route: str, env: Mapping[str, str]) -> Delivery:
        """`routes[route]` resolved against `env` (see `Route.resolve`)."""
        return self.routes[route].resolve(route, env)

    # -- internals

    def _file_written(self, rule: Rule, device: DeviceLike) -> dict[str, Any]:
        written = dict(self._written[rule.name])
        for key in (device.device_id, f"{device.application_id}/{device.device_id}"):
            written.update(self._file_overrides.get(key, {}).get(rule.name, {}))
        return written

    def _tuned(self, rule: Rule, device: DeviceLike) -> Rule:
        registry = device.attributes.get("rules")
        override = registry.get(rule.name) if isinstance(registry, Mapping) else None
        if override is not None:
            result = self._registry_tuned(rule, device, override)
            if not isinstance(result, tuple):
                return result
        # The file's overrides were validated one by one at load; should a device's `device_id` and
        # `application_id/device_id` overrides clash when combined, the rule applies as written.
        result = self._cached(rule, device, {})
        return rule if isinstance(result, tuple) else result

    def _registry_tuned(self, rule: Rule, device: DeviceLike, override: Any) -> Rule | tuple[str, ...]:
        if not isinstance(override, Mapping):
            return (": must be a mapping of keys to override",)
        fixed = sorted(FIXED_KEYS & set(override))
        if fixed:
            return tuple(f".{key}: cannot be overridden per device" for key in fixed)
        return self._cached(rule, device, override)

    def _cached(self, rule: Rule, device: DeviceLike, override: Mapping[str, Any]) -> Rule | tuple[str, ...]:
        file_keys = [
            k for k in (device.device_id, f"{device.application_id}/{device.device_id}") if k in self._file_overrides
        ]
        if not file_keys and not override:
            return rule
        key = (rule.name, json.dumps([file_keys, override], sort_keys=True, default=str))
        found = self._cache.get(key)
        if found is None:
            written = {**self._file_written(rule, device), **override}
            try:
                found = RULE_TYPES[rule.type].model_validate(written)
            except ValidationError as exc:
                found = tuple(
                    _dotted(path, leading=True) + ": " + message
                    for path, message in _pydantic_problems(exc, (), RULE_TYPES[rule.type], {})
                )
            self._cache[key] = found
        return found


# --- loading ----------------------------------------------------------------------------------------

_TOP_KEYS = ("version", "routes", "rules", "overrides")


def load_rules(path: Path | str) -> RuleSet:
    """Read and check a rules file. Raises `RulesError` listing every problem found."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError([f"{p}: cannot read the rules file: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise RulesError([f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    return parse_rules(text, str(p))


def parse_rules(text: str, source: str = "<rules>") -> RuleSet:
    """Check the YAML text of a rules file; `source` names it in messages. Raises `RulesError`."""
    return _Loader(text, source).load()


class _Loader:
    """One pass over a rules document, collecting every problem before giving up."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.doc = yamlsource.parse(text)
        self.problems: list[tuple[int, KeyPath, str]] = [(p.line, p.path, p.message) for p in self.doc.problems]

    def error(self, path: KeyPath, message: str) -> None:
        self.problems.append((self.doc.line(path), path, message))

    def load(self) -> RuleSet:
        data = self.doc.data
        if not self.problems:
            if data is None:
                self.error((), "the rules file is empty: it needs at least `version: 1` and `rules:`")
            elif not isinstance(data, dict):
                self.error((), "a rules file is a mapping with version, routes, rules and overrides")
        if not isinstance(data, dict):
            raise RulesError(self.messages())
        for key in data:
            if key not in _TOP_KEYS:
                self.error((key,), _unknown_key(key, _TOP_KEYS))
        self.version(data)
        routes = self.routes(data.get("routes"))
        rules, written = self.rules(data)
        defined = sorted({*self.route_names(data.get("routes")), DEFAULT_ROUTE})
        self.references(data.get("rules"), defined)
        overrides, file_overrides = self.overrides(data.get("overrides"), data.get("rules"), rules)
        if self.problems:
            raise RulesError(self.messages())
        return RuleSet(
            source=self.source,
            rules=tuple(rules.values()),
            routes=MappingProxyType(routes),
            overrides=MappingProxyType({k: MappingProxyType(v) for k, v in overrides.items()}),
            _written=MappingProxyType(written),
            _file_overrides=MappingProxyType(file_overrides),
        )

    def messages(self) -> list[str]:
        seen = sorted(set(self.problems), key=lambda p: (p[0], _dotted(p[1]), p[2]))
        return [
            f"{self.source}:{line}: {_dotted(path) + ': ' if path else ''}{message}" for line, path, message in seen
        ]

    def version(self, data: dict[str, Any]) -> None:
        if "version" not in data:
            self.error(("version",), "required key is missing (write `version: 1` at the top)")
        elif data["version"] != 1 or isinstance(data["version"], bool):
            shown = self.doc.text.get(("version",), repr(data["version"]))
            self.error(("version",), f"unsupported version {shown} (this lorawatch reads version 1)")

    @staticmethod
    def route_names(raw: Any) -> list[str]:
        return [name for name in raw if isinstance(name, str)] if isinstance(raw, dict) else []

    def routes(self, raw: Any) -> dict[str, Route]:
        routes: dict[str, Route] = {}
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.error(("routes",), "must be a mapping of route name to channels")
            raw = {}
        for name, body in raw.items():
            path: KeyPath = ("routes", name)
            try:
                _name(name)
            except ValueError as exc:
                self.error(path, str(exc))
                continue
            try:
                routes[name] = Route.model_validate({} if body is None else body)
            except ValidationError as exc:
                self.report(exc, path, Route)
        routes.setdefault(DEFAULT_ROUTE, Route())
        return routes

    def rules(self, data: dict[str, Any]) -> tuple[dict[str, Rule], dict[str, dict[str, Any]]]:
        rules: dict[str, Rule] = {}
        written: dict[str, dict[str, Any]] = {}
        if "rules" not in data:
            self.error(("rules",), "required key is missing (a list of rules; `rules: []` for none)")
            return rules, written
        raw = data["rules"]
        if raw is None:
            return rules, written
        if not isinstance(raw, list):
            self.error(("rules",), "must be a list of rules (each item starting with `- name:`)")
            return rules, written
        first: dict[str, int] = {}
        for i, item in enumerate(raw):
            path: KeyPath = ("rules", i)
            if not isinstance(item, dict):
                self.error(path, "a rule must be a mapping (name, category, type, ...)")
                continue
            name = item.get("name")
            if isinstance(name, str):
                if name in first:
                    line = self.doc.line(("rules", first[name], "name"))
                    self.error((*path, "name"), f"duplicate rule name {name!r} (first used at line {line})")
                else:
                    first[name] = i
            kind = item.get("type")
            if "type" not in item:
                self.error((*path, "type"), f"required key is missing (one of: {', '.join(RULE_TYPES)})")
                continue
            if not isinstance(kind, str) or kind not in RULE_TYPES:
                shown = repr(kind) if isinstance(kind, str) else self.doc.text.get((*path, "type"), repr(kind))
                self.error((*path, "type"), f"unknown rule type {shown} (one of: {', '.join(RULE_TYPES)})")
                continue
            model = RULE_TYPES[kind]
            try:
                rule = model.model_validate(item)
            except ValidationError as exc:
                self.report(exc, path, model)
                continue
            if rule.name not in rules:
                rules[rule.name] = rule
                written[rule.name] = item
        return rules, written

    def references(self, raw: Any, defined: list[str]) -> None:
        """Every route a rule names exists (checked on the data as written, so a rule with another
        problem still has its references checked)."""
        if not isinstance(raw, list):
            return
        known = set(defined)

        def check(path: KeyPath, value: Any) -> None:
            refs = [(path, value)] if isinstance(value, str) else []
            if isinstance(value, list):
                refs = [((*path, j), v) for j, v in enumerate(value) if isinstance(v, str)]
            for where, name in refs:
                if name not in known:
                    self.error(where, f"no route named {name!r} (defined: {', '.join(defined)})")

        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                continue
            check(("rules", i, "route"), item.get("route"))
            steps = item.get("escalate")
            for j, step in enumerate(steps if isinstance(steps, list) else []):
                if isinstance(step, dict):
                    check(("rules", i, "escalate", j, "route"), step.get("route"))

    def overrides(
        self, raw: Any, raw_rules: Any, rules: dict[str, Rule]
    ) -> tuple[dict[str, dict[str, Rule]], dict[str, dict[str, dict[str, Any]]]]:
        overrides: dict[str, dict[str, Rule]] = {}
        written: dict[str, dict[str, dict[str, Any]]] = {}
        if raw is None:
            return overrides, written
        if not isinstance(raw, dict):
            self.error(("overrides",), "must be a mapping of device id to {rule name: override}")
            return overrides, written
        names = list(
            dict.fromkeys(
                item["name"] for item in raw_rules or [] if isinstance(item, dict) and isinstance(item.get("name"), str)
            )
        )
        items = {item["name"]: item for item in reversed(raw_rules or []) if isinstance(item, dict) and "name" in item}
        for device, per_rule in raw.items():
            dpath: KeyPath = ("overrides", device)
            if not isinstance(per_rule, dict):
                self.error(dpath, "must be a mapping of rule name to override (e.g. `offline: {disabled: true}`)")
                continue
            for name, override in per_rule.items():
                path: KeyPath = (*dpath, name)
                if name not in names:
                    self.error(path, f"no rule named {name!r} (defined: {', '.join(names) or 'none'})")
                    continue
                if not isinstance(override, dict):
                    self.error(path, "must be a mapping of rule keys to their value for this device")
                    continue
                fixed = [key for key in override if key in FIXED_KEYS]
                for key in fixed:
                    self.error((*path, key), "cannot be overridden per device (it says what the rule is)")
                if fixed or name not in rules:
                    continue  # the rule's own problems are reported at the rule
                model = RULE_TYPES[rules[name].type]
                try:
                    tuned = model.model_validate({**items[name], **override})
                except ValidationError as exc:
                    self.report(exc, path, model, only=set(override))
                    continue
                overrides.setdefault(device, {})[name] = tuned
                written.setdefault(device, {})[name] = override
        return overrides, written

    def report(self, exc: ValidationError, base: KeyPath, model: type[BaseModel], only: set[str] | None = None) -> None:
        """Add pydantic's errors for the data at `base`. With `only` (an override's keys), an error about
        a key the override did not give is reported at the override itself."""
        texts = {path[len(base) :]: text for path, text in self.doc.text.items() if path[: len(base)] == base}
        for path, message in _pydantic_problems(exc, base, model, texts):
            rel = path[len(base) :]
            if only is not None and (not rel or rel[0] not in only):
                path = base
            self.error(path, message)


# --- pydantic errors as rules-file messages ---------------------------------------------------------

#: Keys people write that do not exist where they wrote them, with what to do instead.
_KEY_HINTS: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("ThresholdRule", "severity"): "threshold rules take their severity from the warning and critical levels",
        ("DeviceAlarmRule", "for"): "a device alarm opens at the uplink that carries it; `for` does not apply",
        ("DeviceAlarmRule", "keep_firing_for"): "a device alarm stays open until acknowledged (or on_device_clear)",
        ("Webhook", "secret"): "secrets never go in the rules file: name an environment variable with secret_env",
        ("Email", "password"): "the SMTP password belongs in the LORAWATCH_SMTP_URL environment variable",
    }
)


def _pydantic_problems(
    exc: ValidationError, base: KeyPath, model: type[BaseModel], texts: Mapping[KeyPath, str]
) -> list[tuple[KeyPath, str]]:
    out = []
    for err in exc.errors(include_url=False):
        loc: KeyPath = tuple(err["loc"])
        message = _message(err, loc, model, texts)
        error = (err.get("ctx") or {}).get("error")
        if isinstance(error, RuleFieldError):
            loc = (*loc, *error.path)
        out.append(((*base, *loc), message))
    return out


def _message(err: ErrorDetails, loc: KeyPath, model: type[BaseModel], texts: Mapping[KeyPath, str]) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    shown = texts[loc] if loc in texts and not isinstance(value, str) else repr(value)
    key = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        return _unknown_extra(model, loc)
    if kind == "missing":
        return "required key is missing"
    if kind in {"value_error", "assertion_error"}:
        return str(ctx.get("error", err["msg"]))
    if kind == "literal_error":
        what = {"category": "category", "severity": "severity", "kind": "device kind", "event": "event kind"}
        noun = what.get(str(key), f"value for {key}")
        expected = str(ctx.get("expected", "")).replace(" or ", ", ").replace("'", "")
        return f"{shown} is not {_a(noun)} (one of: {expected})"
    if kind in {"dict_type", "model_type", "mapping_type"}:
        return f"expected a mapping of keys, got {shown}"
    if kind in {"list_type", "tuple_type"}:
        return f"expected a list, got {shown}"
    if kind in {"string_type"}:
        return f"expected text, got {shown} (quote it: '{shown}')" if loc in texts else f"expected text, got {shown}"
    if kind in {"float_type", "int_type", "float_parsing", "int_parsing", "int_from_float"}:
        return f"expected a number, got {shown}"
    if kind in {"bool_type", "bool_parsing"}:
        return f"expected true or false, got {shown}"
    if kind == "too_short":
        return "must not be empty"
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        words = {"greater_than": "greater than", "greater_than_equal": "at least", "less_than": "less than"}
        limit = next(iter(ctx.values()), "")
        return f"must be {words.get(kind, 'at most')} {limit} (got {shown})"
    msg = err["msg"]
    return f"{msg[:1].lower()}{msg[1:]} (got {shown})"


def _unknown_extra(model: type[BaseModel], loc: KeyPath) -> str:
    key = str(loc[-1])
    owner = _model_at(model, loc[:-1])
    if owner is None:
        return "unknown key"
    hint = _KEY_HINTS.get((owner.__name__, key))
    if hint:
        return f"unknown key: {hint}"
    if issubclass(owner, _Rule):
        others = [t for t, m in RULE_TYPES.items() if key in _aliases(m)]
        if others:
            return f"unknown key for a {owner._type()} rule (it belongs to {', '.join(others)} rules)"
    return _unknown_key(key, _aliases(owner))


def _unknown_key(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


def _aliases(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info
    return None


def _model_at(model: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    """The model that validates the mapping at `loc` inside `model`'s data (list indexes skipped)."""
    current = model
    for part in loc:
        if isinstance(part, int):
            continue
        info = _field(current, part)
        inner = _inner_model(info.annotation) if info is not None else None
        if inner is None:
            return None
        current = inner
    return current


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _a(noun: str) -> str:
    """`noun` with its indefinite article ("an alarm_type", "a severity", "an 'above'")."""
    return f"{'an' if noun.lstrip(chr(39))[:1] in set('aeiou') else 'a'} {noun}"


def _dotted(path: KeyPath, *, leading: bool = False) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f"{'.' if out or leading else ''}{part}"
    return out


def describe(rule: Rule) -> str:
    """One line saying what `rule` watches, for `lorawatch rules check --verbose` and logs."""
    parts: list[str] = [f"{rule.name} ({rule.category}, {rule.type})"]
    if isinstance(rule, ThresholdRule):
        levels = ", ".join(f"{sev} {lv.direction} {lv.value:g}" for sev, lv in rule.levels())
        parts.append(f"{rule.metric}: {levels}")
        if rule.for_:
            parts.append(f"for {format_duration(rule.for_)}")
    elif isinstance(rule, DeviceAlarmRule):
        match = ", ".join(f"{k}={'|'.join(map(str, v))}" for k, v in rule.match.items())
        parts.append(f"{rule.severity}: {rule.event} event{' ' + match if match else ''}")
    elif isinstance(rule, OfflineRule):
        parts.append(f"{rule.severity}: {rule.missed} x {format_duration(rule.expected_interval)} without an uplink")
    elif isinstance(rule, BatteryRule):
        limits = [f"{v:g} V" for v in (rule.below_v,) if v is not None]
        limits += [f"{p:g} %" for p in (rule.below_pct,) if p is not None]
        parts.append(f"{rule.severity}: battery below {' or '.join(limits)}")
    elif isinstance(rule, FloodRule):
        levels = ", ".join(f"{sev} above {value:g}%" for sev, value in rule.levels())
        parts.append(f"fill_pct: {levels}, {rule.confirm} readings running")
    elif isinstance(rule, WelfareRule):
        parts.append(f"{rule.severity}: {rule.watch}, learned per flat (at least {format_duration(rule.min_for)})")
    elif isinstance(rule, AnomalyRule):
        parts.append(f"{rule.severity}: {rule.metric} beyond {rule.k:g} robust sd of the device's normal")
    else:
        parts.append(f"{rule.severity}: {(rule.__doc__ or '').split(':')[0].strip().splitlines()[0]}")
    parts.append(f"-> {', '.join(rule.route)}")
    if rule.repeat_every:
        parts.append(f"repeat {format_duration(rule.repeat_every)}")
    if rule.disabled:
        parts.append("(disabled)")
    return " ".join(parts)
