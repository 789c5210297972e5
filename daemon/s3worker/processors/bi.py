"""The BI tables: which Parquet outputs of each processor Athena, Glue and `s3worker query`
read, under which table name, with which columns and partition keys.

Each processor declares its tables in its own `outputs.py`; the column names and types are the
processor's own Arrow schema (the constant its writer casts every output to), reached lazily so
that importing a declaration never imports pandas. `s3worker.catalog` renders the Glue tables
of the template from these declarations, and the daemon's table index (`s3worker.tables`) maps
a manifest's outputs to them.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class BiTable:
    """One catalog table: every input's output called `path` (by the processor).

    `path` is the processor's name for the file; `{dt}` stands for a partition value
    (`sales/dt={dt}/part-0.parquet`), which becomes a partition key of the table. `arrow`
    names the processor's schema constant, `module:NAME`: imported only when asked for.
    """

    name: str
    processor: str
    path: str
    description: str
    arrow: str

    def schema(self) -> Any:
        """The file's pyarrow.Schema (the partition keys are not in it)."""
        module, _, constant = self.arrow.partition(":")
        return getattr(importlib.import_module(module), constant)

    @property
    def partition_keys(self) -> tuple[str, ...]:
        return tuple(PLACEHOLDER.findall(self.path))

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        parts = PLACEHOLDER.split(self.path)
        regex = "".join(f"(?P<{p}>[^/]+)" if i % 2 else re.escape(p) for i, p in enumerate(parts))
        return re.compile(f"^{regex}$")

    def match(self, path: str) -> dict[str, str] | None:
        """The partition values of an output the processor called `path`, or None if the
        output is not this table's."""
        found = self._pattern.match(path)
        return found.groupdict() if found else None


def all_tables() -> tuple[BiTable, ...]:
    """Every built-in processor's tables, in catalog order."""
    from s3worker.processors.applogs.outputs import TABLES as APPLOGS
    from s3worker.processors.appointments.outputs import TABLES as APPOINTMENTS
    from s3worker.processors.sales.outputs import TABLES as SALES
    from s3worker.processors.sensors.outputs import TABLES as SENSORS

    return (*SALES, *APPLOGS, *SENSORS, *APPOINTMENTS)


def table_named(name: str) -> BiTable | None:
    return next((t for t in all_tables() if t.name == name), None)


def table_of(processor: str, path: str) -> tuple[BiTable, dict[str, str]] | None:
    """The table an output belongs to, and its partition values."""
    for table in all_tables():
        if table.processor == processor and (values := table.match(path)) is not None:
            return table, values
    return None
