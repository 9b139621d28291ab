"""Device and gateway identities for a simulated deployment: EUIs with the vendors' OUIs, applications
on both servers, gateways placed around the area, and the radio links between them.

Only identities and radio paths live here; what a device measures is the scenario's business.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from simulators import ids
from simulators.model import Application, Device, Gateway, Link

#: DevEUI prefixes (IEEE OUIs the vendors use), keyed by brand id.
OUI = {
    "dragino": "A84041",
    "milesight-iot": "24E124",
    "decentlab": "70B3D57BA0",
    "elsys": "A81758FFFE",
}
_JOIN_EUI = {"dragino": "A840410000000101", "milesight-iot": "24E124C0002A0001"}
_GATEWAY_OUI = ("B827EBFFFE", "0016C001FF", "A840411EFF", "24E124FFFE")
#: Centre of the simulated council area (lat, lon).
CENTRE = (51.4545, -2.5879)


def application(rng: random.Random, application_id: str, tenant_id: str, tenant_name: str) -> Application:
    """An application with stable ChirpStack UUIDs drawn from `rng`."""
    return Application(
        application_id=application_id,
        tenant_id=tenant_id,
        cs_application_id=ids.uuid4(rng),
        cs_tenant_id=ids.uuid4(rng),
        cs_tenant_name=tenant_name,
    )


def gateways(rng: random.Random, count: int, prefix: str, spread_km: float) -> list[Gateway]:
    """`count` gateways scattered over a square of `spread_km` around the centre."""
    out = []
    for i in range(count):
        lat, lon = scatter(rng, spread_km)
        out.append(
            Gateway(
                gateway_id=f"{prefix}-gw-{i + 1:02d}",
                eui=ids.hex_id(rng, 8, rng.choice(_GATEWAY_OUI)),
                latitude=round(lat, 5),
                longitude=round(lon, 5),
                altitude=round(rng.uniform(10.0, 60.0), 1),
            )
        )
    return out


def packet_broker_gateway(rng: random.Random, name: str) -> Gateway:
    """A community gateway on another network, heard through Packet Broker."""
    lat, lon = scatter(rng, 3.0)
    return Gateway(
        gateway_id=name, eui=ids.hex_id(rng, 8, "58A0CBFFFE"), latitude=lat, longitude=lon, packet_broker=True
    )


def scatter(rng: random.Random, spread_km: float) -> tuple[float, float]:
    """A random position in a square of `spread_km` around the centre."""
    lat = CENTRE[0] + rng.uniform(-0.5, 0.5) * spread_km / 111.0
    lon = CENTRE[1] + rng.uniform(-0.5, 0.5) * spread_km / (111.0 * math.cos(math.radians(CENTRE[0])))
    return lat, lon


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance: plenty for a few kilometres."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6371.0 * math.hypot(x, y)


def links_for(
    rng: random.Random,
    position: tuple[float, float],
    candidates: Sequence[Gateway],
    *,
    extra_loss_db: float,
    max_links: int = 2,
    community: Gateway | None = None,
) -> tuple[Link, ...]:
    """Radio paths from a device at `position` to its nearest gateways (log-distance path loss with
    shadowing, plus `extra_loss_db` for e.g. a cast-iron gully grate or indoor walls). The nearest
    gateway always hears the device; a second one only if the link is usable. `community` adds a
    Packet Broker path for some devices."""
    ranked = sorted(candidates, key=lambda g: distance_km(*position, g.latitude, g.longitude))
    links = []
    for rank, gateway in enumerate(ranked[:max_links]):
        d = max(distance_km(*position, gateway.latitude, gateway.longitude), 0.03)
        rssi = -92.0 - 33.0 * math.log10(d) - extra_loss_db + rng.gauss(0.0, 3.0)
        rssi = min(max(rssi, -124.0), -58.0)
        if rank == 0 or rssi > -112.0:
            antennas = 2 if rng.random() < 0.2 else 1
            links.append(Link(gateway, round(rssi, 1), antennas))
    if community is not None:
        links.append(Link(community, round(rng.uniform(-121.0, -110.0), 1)))
    return tuple(links)


def device(
    rng: random.Random,
    *,
    device_id: str,
    model: str,
    app: Application,
    links: tuple[Link, ...],
    attributes: dict[str, str],
    profiles: dict[str, tuple[str, str]],
) -> Device:
    """A device of `model` with a DevEUI from its vendor's OUI; `profiles` caches one ChirpStack device
    profile per model so devices of a model share it, as they would in a real deployment."""
    brand, model_id = model.split("/", 1)
    if model not in profiles:
        profiles[model] = (ids.uuid4(rng), f"{model_id}-eu868")
    profile_id, profile_name = profiles[model]
    return Device(
        device_id=device_id,
        dev_eui=ids.hex_id(rng, 8, OUI.get(brand, "70B3D5")),
        join_eui=_JOIN_EUI.get(brand, "70B3D57ED0000000"),
        model=model,
        app=app,
        links=links,
        hardware_version="1.0",
        firmware_version=rng.choice(("1.1", "1.2", "1.3")),
        profile_id=profile_id,
        profile_name=profile_name,
        attributes=attributes,
    )
