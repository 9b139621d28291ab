"""The HTML report is one self-contained, escaped page holding the scorecard's numbers and figures."""

from __future__ import annotations

import re
from pathlib import Path

from lorawatch.score_report import TIMELINE_DEVICES, write_report
from lorawatch.scorecard import DeviceInfo, score

from .test_scorecard import DEVICES, FIRST, LAST, alert, label, storm


def test_the_report_is_one_offline_html_page_with_the_tables_and_figures(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script>"
    devices = [*DEVICES, DeviceInfo(hostile, "gully", 1000.0, 400.0, None)]
    alerts = [
        alert("flood", 45, resolved=120),
        alert("rising", 4000, device=hostile),
        alert("gateway_offline", 1010, device=None, gateway_id="gw-1"),
        alert("flood", 50, late=True),
    ]
    labels = [
        storm(420.0),
        label("blockage", 100, 7000, "g2"),
        label("spike", 300, 300, "g3"),
        label("gateway_outage", 1000, 1300, "g1", gateway_id="gw-1"),
        label("gateway_outage", 1000, 1300, "g4", gateway_id="gw-1"),
    ]
    card = score(alerts, labels, devices, FIRST, LAST)
    path = tmp_path / "report.html"
    write_report(path, card, alerts, labels)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<td>flood</td>" in page and "100.0%" in page and "15.0" in page  # the flood row: recall, lead
    assert "<td>blockage</td>" in page and "0.0%" in page
    assert "never counted as false positives" in page
    assert page.count('class="plotly-graph-div"') == 2  # the timeline and the timing histograms
    # Offline: plotly.js inlined once, no script fetched. The bundle names cdn.plot.ly only as the default
    # topojson URL, which only geo maps (not used here) would fetch.
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert page.count("cdn.plot.ly") == page.count('dflt:"https://cdn.plot.ly/un/"') == 1
    assert page.count("Plotly.newPlot") == 2
    # Escaped everywhere: in the tables and in the figures' data.
    assert hostile not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_timeline_shows_the_busiest_devices_and_says_so(tmp_path: Path) -> None:
    devices = [DeviceInfo(f"d{i:03}", "gully", 1000.0, 400.0, None) for i in range(70)]
    alerts = [alert("rising", 100 * i, device=f"d{i:03}") for i in range(70)]
    alerts += [alert("rising", 9000, device="d069")]
    card = score(alerts, [], devices, FIRST, LAST)
    path = tmp_path / "report.html"
    write_report(path, card, alerts, [])
    page = path.read_text(encoding="utf-8")
    assert f"{TIMELINE_DEVICES} of 70, the {TIMELINE_DEVICES} with the most labels and alerts" in page
    assert page.count('class="plotly-graph-div"') == 1  # no TP: no timing figure


def test_an_empty_score_still_writes_a_page(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_report(path, score([], [], [], FIRST, LAST), [], [])
    page = path.read_text(encoding="utf-8")
    assert "No figures" in page and "plotly-graph-div" not in page
