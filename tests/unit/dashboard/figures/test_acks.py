"""Time to acknowledge: the share within target (inclusive, never rounded up), a labelled 60 s line,
the cumulative curve, and an empty panel that says why."""

from __future__ import annotations

import json
import math

import pytest

from dashboard.figures.acks import ack_time_figure, pct_text, within_target


def shape(fig, name: str):
    (found,) = [s for s in fig.layout.shapes if s.name == name]
    return found


def test_within_target_is_the_percentage_at_or_under_the_target() -> None:
    assert within_target([10, 60, 61, 30], 60) == 75.0  # the 60th second counts as within
    assert within_target([61, 120], 60) == 0.0
    assert within_target([0.5], 60) == 100.0
    assert within_target([5, 59.9, 60.1], 30) == pytest.approx(100 / 3)


def test_within_target_of_nothing_is_unknown_not_zero() -> None:
    assert within_target([], 60) is None
    assert within_target([math.nan, math.inf], 60) is None
    assert within_target([10, math.nan], 60) == 100.0


def test_share_text_never_rounds_up_to_a_target() -> None:
    assert pct_text(98.46) == "98.4 %"
    assert pct_text(98.5) == "98.5 %"
    assert pct_text(99.99) == "99.9 %"
    assert pct_text(100.0) == "100.0 %"
    assert pct_text(0.0) == "0.0 %"


def test_target_line_and_share_are_labelled_in_text() -> None:
    fig = ack_time_figure([10, 20, 61, 30])
    target = shape(fig, "target time")
    assert (target.x0, target.x1) == (60, 60)
    assert target.label.text == "60 s target"
    standard = shape(fig, "target share")
    assert (standard.y0, standard.y1) == (98.5, 98.5)
    assert "98.5 %" in standard.label.text
    (note,) = [a for a in fig.layout.annotations if a.name == "share within target"]
    assert note.text.startswith("75.0 % within 60 s (3 of 4): below the 98.5 % target")
    assert "longest wait 61 s" in note.text


def test_meeting_the_target_says_so() -> None:
    waits = [5.0] * 197 + [90.0] * 3  # 98.5 % exactly
    (note,) = [a for a in ack_time_figure(waits).layout.annotations if a.name == "share within target"]
    assert "98.5 % within 60 s (197 of 200): meets the 98.5 % target" in note.text
    waits = [5.0] * 196 + [90.0] * 4  # 98.0 %
    (note,) = [a for a in ack_time_figure(waits).layout.annotations if a.name == "share within target"]
    assert "below" in note.text


def test_curve_is_the_cumulative_share_acknowledged() -> None:
    fig = ack_time_figure([30, 10, 61, 20])
    (curve,) = fig.data
    assert list(curve.x) == [0.0, 10, 20, 30, 61]
    assert list(curve.y) == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert curve.line.shape == "hv"
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text == "alerts acknowledged (%)"


def test_a_long_outlier_does_not_squash_the_target() -> None:
    fig = ack_time_figure([10, 20, 3 * 3600])
    low, high = fig.layout.xaxis.range
    assert low == 0 and 600 <= high < 700  # ten targets shown, the 3 h wait named in the note
    (note,) = [a for a in fig.layout.annotations if a.name == "share within target"]
    assert "longest wait 3.0 h" in note.text


def test_other_targets() -> None:
    fig = ack_time_figure([100, 200], target_s=120, target_pct=90)
    assert shape(fig, "target time").label.text == "120 s target"
    (note,) = [a for a in fig.layout.annotations if a.name == "share within target"]
    assert note.text.startswith("50.0 % within 120 s (1 of 2): below the 90 % target")


def test_no_waits_says_so() -> None:
    fig = ack_time_figure([])
    assert fig.data == ()
    assert [a.text for a in fig.layout.annotations] == ["no acknowledged alerts in this range"]
    assert shape(fig, "target time").x0 == 60  # the target still shows


@pytest.mark.parametrize("waits", [[], [1.5, 70.0]])
def test_ack_figure_serialises_to_plain_json(waits: list[float]) -> None:
    text = ack_time_figure(waits).to_json()
    assert json.loads(text)["layout"]["uirevision"] == "ack-time"
    assert "bdata" not in text
