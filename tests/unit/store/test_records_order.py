"""The change feed builds Reading objects by position (store/feed.py): its fields must stay in the
order the feed's query selects them."""

from dataclasses import fields

from store.records import READING_COLUMNS, Reading


def test_reading_fields_follow_the_feed_query_column_order() -> None:
    assert [f.name for f in fields(Reading)] == ["device_ref", "device_id", "application_id", "time", *READING_COLUMNS]
