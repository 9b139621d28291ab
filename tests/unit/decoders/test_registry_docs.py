"""Contract suite over every registered codec, and the generated docs staying in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from decoders import PHYSICAL_RANGES, VOCABULARY, all_codecs
from decoders.docs import DOCS, main, render_markdown, render_vocabulary, stale
from decoders.registry import Codec

TESTS = Path(__file__).parent
EXAMPLES = json.loads((TESTS.parents[1] / "data" / "device-examples.json").read_text(encoding="utf-8"))
CODECS = all_codecs()


@pytest.mark.parametrize("codec", CODECS, ids=[c.device for c in CODECS])
def test_codec_contract(codec: Codec) -> None:
    assert codec.device == codec.device.lower() and "/" in codec.device
    assert codec.kind in ("level", "care")
    assert codec.ports and all(0 < p < 224 for p in codec.ports)
    assert codec.reference and codec.title
    assert codec.fields, "every output field is documented"
    assert all(f.f_port is None or f.f_port in codec.ports for f in codec.fields)
    assert len({(f.f_port, f.name) for f in codec.fields}) == len(codec.fields)
    module = codec.device.split("/")[1].replace("-", "_")
    has_vector = any(v["device"] == codec.device for v in EXAMPLES)
    has_test = any(module in p.name for p in TESTS.glob("test_*.py"))
    assert has_vector or has_test, "at least one example vector or derived test"


def test_all_level_devices_registered() -> None:
    level = {c.device for c in CODECS if c.kind == "level"}
    assert level >= {
        "dragino/ldds75",
        "dragino/dds75-lb",
        "dragino/lmds200",
        "milesight-iot/em500-udl",
        "milesight-iot/em310-udl",
        "milesight-iot/em410-rdl",
        "decentlab/dl-mbx",
    }


def test_rendered_docs_cover_registry_and_vocabulary() -> None:
    text = render_markdown()
    for codec in CODECS:
        assert f"## `{codec.device}`" in text
        assert all(f"`{f.name}`" in text for f in codec.fields)
    assert all(f"`{name}`" in render_vocabulary() for name in VOCABULARY)


def test_committed_docs_match_registry() -> None:
    assert stale() == [], "docs are stale: run `python -m decoders.docs --write`"


def test_check_mode_detects_drift(tmp_path: Path) -> None:
    assert main(["--check", "--docs", str(tmp_path)]) == 1
    assert main(["--write", "--docs", str(tmp_path)]) == 0
    assert main(["--check", "--docs", str(tmp_path)]) == 0
    (tmp_path / "measurements.md").write_text("edited by hand\n", encoding="utf-8")
    assert main(["--check", "--docs", str(tmp_path)]) == 1
    assert DOCS.name == "docs"


def test_physical_ranges_name_vocabulary_quantities_and_are_ordered() -> None:
    assert set(PHYSICAL_RANGES) <= set(VOCABULARY), set(PHYSICAL_RANGES) - set(VOCABULARY)
    assert all(low < high for low, high in PHYSICAL_RANGES.values())
