"""Column roles, and which of a file's columns plays each: by name, by word, then by content.

A processor declares its roles (`date`, `product`, `revenue`…) with the names and words that
name them in English, Portuguese, Spanish and German exports, what a column of that role
holds, and which roles are required. Resolution tries, in order:

1. the user's mapping (the `mapping` option): role -> column, exact or normalised name;
2. exact normalised names (`Product_ID`, `productId` -> `productid`);
3. words inside a longer name (`Product line` -> product, `InvoiceDate` -> date);
4. content, for a required role still missing: the first free column whose sampled values
   look like that role's content (dates, clock times, numbers, status words).

Standard library only: routing runs this in the daemon's main process to sniff files.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from s3worker.errors import BadDataError

# What a role's column holds, as patterns over sampled cell text.
DATE_LIKE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})"
    r"([ T]\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?)?\s*$"
)
CLOCK_LIKE = re.compile(r"^\s*\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?\s*([AaPp]\.?[Mm]\.?)?\s*$")
NUMBER_LIKE = re.compile(r"^\s*[-+]?(\d[\d.,]*|[.,]\d+)([eE][-+]?\d+)?\s*$")
CONTENT_SHARE = 0.8  # of a column's sampled non-empty values, to count as that content
WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
SLASHED = re.compile(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}")


@functools.lru_cache(maxsize=4096)
def norm(name: str) -> str:
    """`Patient_ID`, `patientId`, `Paciente ID` -> `patientid`: no accents, case, punctuation."""
    return re.sub(r"[^a-z0-9]", "", fold(name).lower())


def fold(text: str) -> str:
    """Accents off: `Situação` -> `Situacao`."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


@functools.lru_cache(maxsize=4096)
def words(name: str) -> frozenset[str]:
    """`InvoiceDate` -> {invoice, date}; `Product line` -> {product, line}; lower case."""
    return frozenset(w.lower() for w in WORD.findall(fold(name)))


@dataclass(frozen=True)
class Role:
    """One thing a processor needs from a file, and how to recognise the column holding it."""

    name: str
    names: tuple[str, ...]  # normalised column names, best first
    words: tuple[str, ...] = ()  # words that name it inside a longer column name
    content: str | None = None  # "date", "clock", "number" or "status": for content matching
    label: str = ""  # how errors speak of it ("a date column")


@dataclass(frozen=True)
class Resolution:
    """Role -> column, and how each was found (`mapping`, `name`, `word`, `content`)."""

    columns: dict[str, str]
    how: dict[str, str]
    seen: tuple[str, ...]

    def get(self, role: str) -> str | None:
        return self.columns.get(role)

    def __contains__(self, role: object) -> bool:
        return role in self.columns


@dataclass(frozen=True)
class Schema:
    """A processor's roles; `required` lists groups of which at least one role must resolve."""

    processor: str
    roles: tuple[Role, ...]
    required: tuple[tuple[str, ...], ...] = ()
    statuses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def role(self, name: str) -> Role:
        return next(r for r in self.roles if r.name == name)

    def match(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[str | None]] = (),
        mapping: Mapping[str, str] | None = None,
    ) -> Resolution:
        """Every role that some column plays (see the module doc); never raises."""
        st = _State({}, {}, list(columns), rows)
        by_norm: dict[str, str] = {}
        for column in columns:
            by_norm.setdefault(norm(column), column)
        for role, column in (mapping or {}).items():
            hit = column if column in columns else by_norm.get(norm(column))
            if hit is not None:
                st.take(role, hit, "mapping")
        self._by_names(st, by_norm)
        self._by_words(st)
        self._by_content(st)
        self._split_clock(st)
        return Resolution(st.found, st.how, tuple(columns))

    def _by_names(self, st: _State, by_norm: dict[str, str]) -> None:
        for role in self.roles:
            column = next((by_norm[a] for a in role.names if st.free(by_norm.get(a))), None)
            if role.name not in st.found and column is not None:
                st.take(role.name, column, "name")

    def _by_words(self, st: _State) -> None:
        for role in self.roles:
            if role.name in st.found or not role.words:
                continue
            column = next(
                (c for c in st.columns if st.free(c) and words(c) & set(role.words)), None
            )
            if column is not None:
                st.take(role.name, column, "word")

    def _by_content(self, st: _State) -> None:
        for group in self.required:
            if not st.rows or any(r in st.found for r in group):
                continue
            for name in group:
                content = self.role(name).content
                column = next(
                    (
                        c
                        for c in st.columns
                        if content and st.free(c) and self._holds(content, st.values(c))
                    ),
                    None,
                )
                if column is not None:
                    st.take(name, column, "content")
                    break

    def _split_clock(self, st: _State) -> None:
        """`Data;Horário` or `Date;Time`: a date-and-time role given a column of clock times
        while a date column exists is the time of day to read with that date."""
        if "date" not in st.found or "time" in st.found or not st.rows:
            return
        for role in self.roles:
            column = st.found.get(role.name)
            timed = role.content == "date" and role.name != "date" and column is not None
            if timed and column is not None and self._holds("clock", st.values(column)):
                how = st.how.pop(role.name)
                del st.found[role.name]
                st.take("time", column, how)
                return

    def _holds(self, content: str, values: list[str]) -> bool:
        if not values:
            return False
        texts = values
        if content == "status":
            stems = [s for group in self.statuses.values() for s in group]
            hits = sum(any(s in fold(t).lower() for s in stems) for t in texts)
        else:
            pattern = {"date": DATE_LIKE, "clock": CLOCK_LIKE, "number": NUMBER_LIKE}[content]
            hits = sum(bool(pattern.match(t)) for t in texts)
        return hits >= CONTENT_SHARE * len(texts)

    def resolve(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[str | None]] = (),
        mapping: Mapping[str, str] | None = None,
    ) -> Resolution:
        """`match`, or a BadDataError naming what is missing and how to say where it is."""
        self.check_mapping(columns, mapping or {})
        found = self.match(columns, rows, mapping)
        for group in self.required:
            if not any(r in found for r in group):
                raise BadDataError(self.missing_message(group, columns))
        return found

    def check_mapping(self, columns: Sequence[str], mapping: Mapping[str, str]) -> None:
        normalised = {norm(c) for c in columns}
        for role, column in mapping.items():
            if column not in columns and norm(column) not in normalised:
                raise BadDataError(
                    f"option mapping.{role}={column!r}: the file has no such column; "
                    f"columns seen: {list(columns)}"
                )

    def missing_message(self, group: Iterable[str], columns: Sequence[str]) -> str:
        roles = [self.role(r) for r in group]
        what = " or ".join(r.label or f"a {r.name} column" for r in roles)
        accepted = "; ".join(
            f"{r.name}: {', '.join(r.names[:12])}"
            + (f" or a name with the word {'/'.join(r.words[:8])}" if r.words else "")
            for r in roles
        )
        first = roles[0].name
        return (
            f"{self.processor} needs {what}; columns seen: {list(columns)}; "
            f"accepted names ({accepted}); if the column is there under another name, set the "
            f"option mapping.{first}=COLUMN (`s3worker process --option mapping.{first}=COLUMN`, "
            f'or "mapping": {{"{first}": "COLUMN"}} in the route\'s options in '
            "S3WORKER_PROCESSOR_CONFIG)"
        )

    def score(self, columns: Sequence[str], rows: Sequence[Sequence[str | None]]) -> float:
        """Sniffing confidence: 0 unless every required group resolves; 0.7 to 0.95 when they
        all resolve by name (more with the optional roles), 0.55 to 0.65 when content had to."""
        return self.rate(self.match(columns, rows))

    def rate(self, found: Resolution) -> float:
        """`score` of a resolution already made."""
        if not all(any(r in found for r in group) for group in self.required):
            return 0.0
        required = {r for group in self.required for r in group}
        optional = [r for r in self.roles if r.name not in required]
        share = sum(r.name in found for r in optional) / len(optional) if optional else 1.0
        by_content = any(found.how[r] == "content" for r in required if r in found)
        return (0.55 + 0.1 * share) if by_content else (0.7 + 0.25 * share)


@dataclass
class _State:
    """A resolution under way: what is found so far, and the sampled rows to look at."""

    found: dict[str, str]
    how: dict[str, str]
    columns: list[str]
    rows: Sequence[Sequence[str | None]]

    used: set[str] = field(default_factory=set)

    def free(self, column: str | None) -> bool:
        return column is not None and column not in self.used

    def take(self, role: str, column: str, how: str) -> None:
        if role in self.found:
            self.used.discard(self.found[role])
        self.found[role], self.how[role] = column, how
        self.used.add(column)

    def values(self, column: str) -> list[str]:
        """The column's sampled non-empty cells."""
        i = self.columns.index(column)
        return [str(r[i]) for r in self.rows if i < len(r) and r[i] not in (None, "")]


def day_first(values: Iterable[str]) -> bool | None:
    """Whether `d/m/y` dates are day first (True), month first (False) or cannot tell (None),
    from the values: a first field above 12 is a day, a second field above 12 too."""
    first = second = False
    for value in values:
        m = SLASHED.match(value)
        if m:
            first |= int(m.group(1)) > 12
            second |= int(m.group(2)) > 12
    if first != second:
        return first
    return None
