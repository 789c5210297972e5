"""README.pt-BR.md must stay in step with README.md.

The Portuguese README is a translation: its prose differs, but everything that is not prose must
match the English one, so a change made to one README only fails here. Compared, outside the
first line (the "English | Português" switch, which must link each file to the other):

- headings: the same levels in the same order;
- fenced code blocks: identical, byte for byte, in the same order;
- tables: the same number, each with the same rows and the same number of cells per row, and the
  same figures in each row;
- images and links: the same targets in the same order;
- HTML comments (such as the Benchmarks section's markers): identical, in the same order;
- in every section (the text between two headings): the same inline code spans (commands, names,
  variables, flags) and the same figures. Figures are compared without their separators, so
  "1,000" matches "1.000" and "0.5" matches "0,5": prose numbers may follow Brazilian style.

When this fails, apply the change from the other README, translated.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise, zip_longest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EN = ROOT / "README.md"
PT = ROOT / "README.pt-BR.md"

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"(!?)\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
COMMENT = re.compile(r"<!--.*?-->", re.S)
# A figure: digits with "." or "," between groups, not part of a word (S3, m7g, IPv4, p95, 5xx).
NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?!\w)")


@dataclass
class Section:
    heading: str
    level: int
    prose: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.prose)


@dataclass
class Doc:
    switch_line: str
    headings: list[tuple[int, str]] = field(default_factory=list)
    code_blocks: list[str] = field(default_factory=list)
    tables: list[list[str]] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    @property
    def prose(self) -> str:
        return "\n".join(s.text for s in self.sections)


def parse(path: Path) -> Doc:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines, f"{path.name} is empty"
    doc = Doc(switch_line=lines[0])
    doc.sections.append(Section(heading="(before the first heading)", level=0))
    fence: str | None = None
    block: list[str] = []
    table: list[str] | None = None
    for line in lines[1:]:
        if fence is not None:
            block.append(line)
            if line.strip() == fence:
                doc.code_blocks.append("\n".join(block))
                fence, block = None, []
            continue
        opening = FENCE.match(line)
        if opening:
            fence, block = opening.group(1), [line]
            table = None
            continue
        if line.lstrip().startswith("|"):
            if table is None:
                table = []
                doc.tables.append(table)
            table.append(line.strip())
        else:
            table = None
        heading = HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            doc.headings.append((level, heading.group(2)))
            doc.sections.append(Section(heading=heading.group(2), level=level))
        doc.sections[-1].prose.append(line)
    assert fence is None, f"{path.name}: a code block is never closed"
    return doc


def inline_code(text: str) -> Counter[str]:
    text = COMMENT.sub(" ", text)
    return Counter(" ".join(m.group(2).split()) for m in INLINE_CODE.finditer(text))


def figures(text: str) -> Counter[str]:
    text = COMMENT.sub(" ", text)
    text = INLINE_CODE.sub(" ", text)
    text = LINK.sub(" ", text)
    return Counter(re.sub(r"[.,]", "", m.group(0)) for m in NUMBER.finditer(text))


def links(text: str) -> list[tuple[str, str]]:
    text = INLINE_CODE.sub(" ", text)
    return [("image" if m.group(1) else "link", m.group(2)) for m in LINK.finditer(text)]


def cells(row: str) -> list[str]:
    # Split on "|" outside inline code (a cell may hold `|`).
    masked = INLINE_CODE.sub(lambda m: "x" * len(m.group(0)), row)
    bounds = [i for i, ch in enumerate(masked) if ch == "|"]
    return [row[a + 1 : b].strip() for a, b in pairwise(bounds)]


def row_figures(row: str) -> list[str]:
    return sorted(figures(row).elements())


def diff(kind: str, en: Counter[str], pt: Counter[str]) -> str:
    only_en = sorted((en - pt).elements())
    only_pt = sorted((pt - en).elements())
    return f"{kind}: only in README.md {only_en}, only in README.pt-BR.md {only_pt}"


@pytest.fixture(scope="module")
def en() -> Doc:
    return parse(EN)


@pytest.fixture(scope="module")
def pt() -> Doc:
    return parse(PT)


def test_each_readme_links_to_the_other(en: Doc, pt: Doc) -> None:
    assert ("link", "README.pt-BR.md") in links(en.switch_line), en.switch_line
    assert ("link", "README.md") in links(pt.switch_line), pt.switch_line
    for doc in (en, pt):
        assert not HEADING.match(doc.switch_line), "the language switch must be the first line"


def test_same_headings_in_the_same_order(en: Doc, pt: Doc) -> None:
    en_levels = [level for level, _ in en.headings]
    pt_levels = [level for level, _ in pt.headings]
    if en_levels != pt_levels:
        show = [
            (f"{'#' * a[0]} {a[1]}" if a else "-", f"{'#' * b[0]} {b[1]}" if b else "-")
            for a, b in zip_longest(en.headings, pt.headings)
        ]
        width = max(len(left) for left, _ in show) + 2
        rows = [f"{left:<{width}}{right}" for left, right in show]
        pytest.fail("headings differ (README.md | README.pt-BR.md):\n" + "\n".join(rows))


def test_same_code_blocks(en: Doc, pt: Doc) -> None:
    for i, (a, b) in enumerate(zip(en.code_blocks, pt.code_blocks, strict=False)):
        assert a == b, f"code block {i + 1} differs"
    assert len(en.code_blocks) == len(pt.code_blocks), (
        f"{len(en.code_blocks)} code blocks in README.md, {len(pt.code_blocks)} in README.pt-BR.md"
    )


def test_same_tables(en: Doc, pt: Doc) -> None:
    assert len(en.tables) == len(pt.tables), (
        f"{len(en.tables)} tables in README.md, {len(pt.tables)} in README.pt-BR.md"
    )
    for i, (a, b) in enumerate(zip(en.tables, pt.tables, strict=True)):
        where = f"table {i + 1} (README.md: {a[0]!r})"
        assert len(a) == len(b), f"{where}: {len(a)} rows vs {len(b)}"
        for j, (row_en, row_pt) in enumerate(zip(a, b, strict=True)):
            assert len(cells(row_en)) == len(cells(row_pt)), f"{where}, row {j + 1}: cell count"
            assert row_figures(row_en) == row_figures(row_pt), (
                f"{where}, row {j + 1}: figures {row_figures(row_en)} vs {row_figures(row_pt)}"
            )


def test_same_image_and_link_targets(en: Doc, pt: Doc) -> None:
    assert links(en.prose) == links(pt.prose)


def test_same_html_comments(en: Doc, pt: Doc) -> None:
    assert COMMENT.findall(en.prose) == COMMENT.findall(pt.prose)


def test_same_inline_code_and_figures_per_section(en: Doc, pt: Doc) -> None:
    n_en, n_pt = len(en.sections), len(pt.sections)
    assert n_en == n_pt, "different headings: see test_same_headings_in_the_same_order"
    problems = []
    for a, b in zip(en.sections, pt.sections, strict=True):
        for kind, extract in (("inline code", inline_code), ("figures", figures)):
            ea, eb = extract(a.text), extract(b.text)
            if ea != eb:
                problems.append(f"section {a.heading!r} / {b.heading!r}: {diff(kind, ea, eb)}")
    assert not problems, "\n".join(problems)
