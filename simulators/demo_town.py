"""The demo's council: a small town's gullies and one care home, eventful in the first minutes.

`lorawatch demo` plays a week of data at 120x, so one minute of wall time is two hours of data. Left to
chance, the first storm of `gully-mixed` comes hours into the data and the first fall of `care-mixed`
days into it: someone trying the demo would watch a quiet dashboard for a long time. Here the weather
and the falls are planned instead (the rest of the week stays random, as `gully-mixed` and
`care-mixed` are):

- a heavy storm 20 minutes into the data (10 s of wall time), peaking about 40 minutes later, which
  takes the gullies with the longest drain times and largest catchments past the flood warning level
  (flood alerts 35 to 50 s of wall time in);
- three gullies blocked from the start, so that storm's recession is hours too slow: the blockage rule
  judges a recession after 1.5 x its cold-start drain time (2 h) has passed, about 5 hours into the
  data (2.5 minutes of wall time);
- one resident falling 25 minutes into the data (12 s of wall time).

The town is about 60 gullies within 1.5 km of one centre (a 2 km square) and one care home of 12 flats
(`care-mixed`'s fleet is its residents; each resident's five sensors share the flat as their
`care_group`), all on the same centre as every other scenario (`simulators.fleet.CENTRE`).
"""

from __future__ import annotations

from simulators.care import CareParams
from simulators.gully import GullyParams, PlannedStorm

#: Gullies in the town, and flats in its care home (`--fleet` of the two scenarios).
GULLIES = 60
FLATS = 12
#: The side of the square the town's gullies are scattered over (km): none further than 1.41 km from
#: the centre.
SPREAD_KM = 2.0
#: The storm: after 20 minutes of data, 2 hours of rain peaking at 20 mm/h. With the default seed, eight
#: gullies pass the flood rule's 40 % warning level and the blocked gully-0007 reaches 61 %.
STORM = PlannedStorm(after_s=20 * 60.0, hours=2.0, peak_mm_h=20.0)
#: Gullies whose outlets are blocked when the demo starts.
BLOCKED = ("gully-0007", "gully-0023", "gully-0041")
#: When the first resident falls (seconds of data after the start).
FALL_AFTER_S = 25 * 60.0

GULLY_PARAMS = GullyParams(
    storms_per_week=2.0,
    blockages=0.05,
    silt=0.1,
    faults_per_week=0.3,
    gateway_outages=1,
    battery_decay=0.05,
    rejoins_per_week=0.05,
    silences_per_week=0.02,
    planned_storms=(STORM,),
    blocked_from_start=BLOCKED,
    spread_km=SPREAD_KM,
)
CARE_PARAMS = CareParams(0.3, 0.3, 0.3, falls_at_s=(FALL_AFTER_S,))
