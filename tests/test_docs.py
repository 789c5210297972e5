"""docs/: the architecture picture.

docs/architecture.drawio must be a draw.io file draw.io can open (uncompressed <mxfile> XML
whose edges all join cells that exist), and docs/architecture.png must be the rendering of
the current docs/architecture.py: `make diagram` records the SHA-256 of both next to the image
(docs/architecture.sha256), so editing the script without re-rendering fails here. Needs
neither Graphviz nor the `diagrams` package.
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DRAWIO = DOCS / "architecture.drawio"
SCRIPT = DOCS / "architecture.py"
IMAGE = DOCS / "architecture.png"
STAMP = DOCS / "architecture.sha256"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cells() -> list[ET.Element]:
    root = ET.parse(DRAWIO).getroot()
    assert root.tag == "mxfile"
    diagrams = root.findall("diagram")
    assert diagrams, "no <diagram>"
    models = [d.find("mxGraphModel") for d in diagrams]
    assert all(m is not None for m in models), "a compressed <diagram>: save it uncompressed"
    return [cell for m in models if m is not None for cell in m.iter("mxCell")]


def test_drawio_ids_are_unique(cells: list[ET.Element]) -> None:
    ids = [c.get("id") for c in cells]
    assert None not in ids
    assert len(ids) == len(set(ids))


def test_drawio_edges_join_existing_cells(cells: list[ET.Element]) -> None:
    ids = {c.get("id") for c in cells}
    edges = [c for c in cells if c.get("edge") == "1"]
    assert edges
    for edge in edges:
        for end in ("source", "target"):
            assert edge.get(end) in ids, f"edge {edge.get('id')}: {end} {edge.get(end)!r}"
        assert edge.get("value"), f"edge {edge.get('id')} has no label"


def test_drawio_parents_exist(cells: list[ET.Element]) -> None:
    ids = {c.get("id") for c in cells}
    for cell in cells:
        parent = cell.get("parent")
        assert parent is None or parent in ids, f"{cell.get('id')}: parent {parent!r}"


def test_drawio_shows_the_stack(cells: list[ET.Element]) -> None:
    """Every part of deploy/cloudformation.yaml the README talks about, with AWS 2019+ shapes."""
    styles = " ".join(c.get("style", "") for c in cells if c.get("vertex") == "1")
    for shape in (
        "resIcon=mxgraph.aws4.s3",
        "shape=mxgraph.aws4.rule",
        "shape=mxgraph.aws4.event_time_based",
        "shape=mxgraph.aws4.queue",
        "resIcon=mxgraph.aws4.lambda",
        "shape=mxgraph.aws4.instances",
        "shape=mxgraph.aws4.volume",
        "grIcon=mxgraph.aws4.group_vpc2",
        "shape=mxgraph.aws4.endpoints",
        "shape=mxgraph.aws4.alarm",
        "resIcon=mxgraph.aws4.sns",
        "resIcon=mxgraph.aws4.systems_manager",
    ):
        assert shape in styles, shape
    labels = " ".join(re.sub(r"<[^>]+>", " ", c.get("value", "")) for c in cells).lower()
    for name in ("raw bucket", "processed bucket", "work queue", "dead-letter queue", "scratch"):
        assert name in labels, name


def test_image_is_the_rendering_of_the_current_script() -> None:
    assert IMAGE.read_bytes()[:8] == PNG_MAGIC
    recorded: dict[str, str] = {}
    for line in STAMP.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        recorded[name] = digest
    for path in (SCRIPT, IMAGE):
        name = f"docs/{path.name}"
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        assert recorded.get(name) == actual, f"{name} changed since `make diagram`: run it"


def test_picture_shows_the_idle_self_stop_and_reads_at_1000_px() -> None:
    # The headline of the product is in the picture, as in the drawio
    assert "StopInstances on itself" in SCRIPT.read_text()
    # And at README width (about 1,000 px) the 24-point labels (32 px in the PNG) keep
    # at least 60% of their size: 19 px or more
    width = int.from_bytes(IMAGE.read_bytes()[16:20], "big")  # the PNG's IHDR width
    assert width <= 1700, width
