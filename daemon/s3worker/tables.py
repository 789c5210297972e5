"""The table index: where Athena (and any Hive-style reader) finds the current BI outputs.

An input's outputs live under its own results folder (`PREFIX/KEY/...`), so no one prefix holds
one table's files, and a folder can still hold an unfinished run's files until its manifest
says otherwise. After a manifest is swapped in, the daemon writes one small text file per table
(and partition) of that input, naming its current outputs, one `s3://` URI a line:

    PREFIX/_tables/sales_daily/<source-id>.txt
    PREFIX/_tables/sales_detail/dt=2024-01-01/<source-id>.txt

The Glue tables (`s3worker.catalog`) read these with `SymlinkTextInputFormat`, so a query sees
exactly what the manifests list. `<source-id>` is per input (not per version): a new version
overwrites its entries, and the entries of partitions it no longer has are emptied (computed
from the replaced manifest's outputs, never by listing; see Order).

Order: entries are written after the swap and before the replaced outputs are deleted, so an
entry never names a file that is already gone while its manifest is current. Two versions
finishing close together may write their entries in either order, so:

- the first manifest of an input (swapped in with `If-None-Match: *`) creates its entries with
  `If-None-Match: *` too. Any entry already there was written by a newer version's run (or by
  another delivery of this one): the writer then falls back to the rule below. When every
  entry was created, no later writer came first, and any later one overwrites them: nothing
  to read again;
- any other writer (a version replacing another, a redelivery) writes its entries
  unconditionally, then reads the manifest again and, if a newer one is there, rewrites the
  entries from it;
- an entry of a partition the new version no longer has is emptied, not deleted: an empty
  entry names no file (a query reads nothing from it), and a first manifest's late
  `If-None-Match` finds it there and falls back, where after a delete it would create the entry
  again, naming files that are gone.

A run that dies (or fails) between the swap and the entries leaves its message to be delivered
again; the redelivery finds the manifest done and writes the entries before it deletes the
replaced outputs (see `jobs`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable

import structlog
from botocore.exceptions import ClientError

from s3worker.contract import TABLES_DIR, Layout, untag
from s3worker.events import ObjectRef
from s3worker.processors.bi import all_tables, table_of
from s3worker.publish import CONFLICT_CODES
from s3worker.retry import error_code, http_status
from s3worker.storage import Storage

log = structlog.get_logger(__name__)

SOURCE_ID_CHARS = 32
PARALLEL_PUTS = 8  # entries written at once: a year of sales_detail is 365 of them
# An entry is one URI a line: a key with a line break cannot be named (S3 allows one).
NEWLINES = frozenset("\n\r")


def source_id(source: str) -> str:
    """An input's stable name in the index (its results path, hashed)."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:SOURCE_ID_CHARS]


def entries(
    layout: Layout, bucket: str, source: str, processor: str, keys: Iterable[str]
) -> dict[str, str]:
    """Index key -> its text (the `s3://` URIs of the outputs it names), for an input's
    output keys; outputs that belong to no table, or whose key holds a line break, are left
    out."""
    root = layout.results_prefix(source)
    found: dict[str, list[str]] = {}
    for key in sorted(keys):
        if not key.startswith(root) or NEWLINES & set(key):
            continue
        hit = table_of(processor, untag(key[len(root) :]))
        if hit is None:
            continue
        table, values = hit
        parts = [f"{k}={values[k]}" for k in table.partition_keys]
        entry = "/".join(p for p in (layout.prefix, TABLES_DIR, table.name, *parts) if p)
        found.setdefault(f"{entry}/{source_id(source)}.txt", []).append(f"s3://{bucket}/{key}")
    return {k: "".join(f"{uri}\n" for uri in uris) for k, uris in found.items()}


class TableIndex:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def update(
        self,
        ref: ObjectRef,
        processor: str,
        keys: Iterable[str],
        replaced: Iterable[str],
        created: bool = False,
    ) -> None:
        """Point the tables at a manifest's outputs (`keys`) and empty the entries only its
        `replaced` outputs had; then make sure no newer manifest came meanwhile. `created`: the
        manifest was the input's first (swapped in with `If-None-Match: *`): its entries are
        created only where there are none, and when all were, that settles it (see Order).

        Raises what S3 raised (after the retry policy): the message is then retried, and the
        retry finds the manifest done and runs this again (`jobs`: the duplicate path).
        """
        keys = tuple(keys)
        if created and await self._create(ref, processor, keys):
            return
        if not await self._write(ref, processor, keys, replaced):
            return  # no BI output (another processor's, or a plug-in's): nothing to check
        latest = await self.storage.previous_results(ref)
        if latest.etag and set(latest.outputs) != set(keys):  # a newer version's manifest
            await self._write(ref, latest.processor, latest.outputs, keys)

    async def _create(self, ref: ObjectRef, processor: str, keys: Iterable[str]) -> bool:
        """Create the entries of `keys` where there are none; False: some entry was there."""
        storage, layout = self.storage, self.storage.layout
        fresh = entries(layout, storage.bucket, layout.source(ref.bucket, ref.key), processor, keys)
        found: list[str] = []

        async def create(key: str, text: str) -> None:
            try:
                await self._put(key, text, IfNoneMatch="*")
            except ClientError as exc:
                if error_code(exc) not in CONFLICT_CODES and http_status(exc) not in (409, 412):
                    raise
                found.append(key)

        await self._each(create, fresh)
        if found:
            log.info("table_index_entries_found", found=len(found), entries=len(fresh))
        elif fresh:
            log.info("table_index_written", entries=len(fresh), removed=0)
        return not found

    async def _write(
        self, ref: ObjectRef, processor: str, keys: Iterable[str], replaced: Iterable[str]
    ) -> bool:
        """Write the entries of `keys`, empty those only `replaced` had; False: none."""
        storage, layout = self.storage, self.storage.layout
        source = layout.source(ref.bucket, ref.key)
        fresh = entries(layout, storage.bucket, source, processor, keys)
        # The replaced outputs may be another processor's (a version routed elsewhere, e.g. a
        # sales file overwritten with appointments): its tables' entries are emptied too. A
        # manifest does not say which processor wrote what it replaced, so every processor's
        # tables are tried; an entry emptied by a false match is one the new version has no
        # output for anyway.
        replaced = tuple(replaced)
        stale = {
            key
            for name in sorted({t.processor for t in all_tables()})
            for key in entries(layout, storage.bucket, source, name, replaced)
        } - set(fresh)
        await self._each(self._put, {**fresh, **dict.fromkeys(sorted(stale), "")})
        if fresh or stale:
            log.info("table_index_written", entries=len(fresh), removed=len(stale))
        return bool(fresh or stale)

    async def _put(self, key: str, text: str, **condition: str) -> None:
        storage = self.storage
        await storage.retry.call(
            storage.s3.put_object, Bucket=storage.bucket, Key=key, Body=text.encode(),
            ContentType="text/plain", **condition,
        )  # fmt: skip

    @staticmethod
    async def _each(put: Callable[[str, str], Awaitable[None]], texts: dict[str, str]) -> None:
        """`put` of every entry, PARALLEL_PUTS at a time."""
        room = asyncio.Semaphore(PARALLEL_PUTS)

        async def one(key: str, text: str) -> None:
            async with room:
                await put(key, text)

        await asyncio.gather(*(one(k, t) for k, t in texts.items()))
