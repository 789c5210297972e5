"""Results made visible without races between versions of one input.

An object can be overwritten while its previous version is still being processed, and the two
runs may finish in either order. So:

- every output name carries a tag of the input *version*
  (`daily/dt=2024-01-01/part-0.<tag>.parquet`): two versions never write the same object, so
  a slow old run can never overwrite or mix into the newer version's files; a retry of the
  same version rewrites the same names;
- the manifest is written last, by compare-and-swap: `If-Match` the manifest this run read
  at its start (`If-None-Match: *` when there was none), right after a HEAD that confirms the
  input still holds this version. Whoever changed the manifest in between makes the write fail
  (412); the run reads again and decides afresh. A run whose version is no longer current
  deletes its own outputs and writes nothing;
- after a successful swap, the outputs the replaced manifest listed go (never by prefix: `KEY/`
  can be the parent of another input's results), and the manifest names them
  (`replaced_outputs`), so a redelivery after a crash at that point removes them again.

The window left is the one S3 cannot close: between the HEAD and the swap a newer version can
be uploaded. Its own run then finds this manifest (412 or a fresh read) and replaces it; the
newest version always ends up the only one.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import structlog
from botocore.exceptions import ClientError

from s3worker.contract import Manifest
from s3worker.errors import TransientError
from s3worker.events import ObjectRef
from s3worker.retry import error_code, http_status
from s3worker.storage import Previous, Storage

log = structlog.get_logger(__name__)

TAG_CHARS = 16
# 412: the manifest changed since it was read; 409: another conditional write raced this one;
# 404: If-Match on a manifest that was deleted meanwhile.
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"})
MAX_SWAPS = 8


def version_tag(ref: ObjectRef) -> str:
    """Short, stable, per (key, version): what the output names of one version share."""
    ident = f"{ref.bucket}\0{ref.key}\0{ref.version_id or ref.etag or ''}"
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:TAG_CHARS]


class Publisher:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def commit(
        self, ref: ObjectRef, manifest: Manifest, metadata: dict[str, str], previous: Previous
    ) -> Manifest | None:
        """Write the manifest if `ref` is still the input's current version.

        Returns the manifest written (naming the outputs it replaced), or None when another run
        had already written this version's manifest. Raises SupersededError when a newer
        version exists.
        """
        swapped = await self.swap(ref, manifest, metadata, previous)
        return swapped[0] if swapped else None

    async def swap(
        self, ref: ObjectRef, manifest: Manifest, metadata: dict[str, str], previous: Previous
    ) -> tuple[Manifest, bool] | None:
        """`commit`, and whether the manifest written was the input's first (`If-None-Match:
        *`): its table index entries can then be created without a read after them (tables)."""
        layout = self.storage.layout
        key = layout.manifest_key(layout.source(ref.bucket, ref.key))
        for _ in range(MAX_SWAPS):
            await self.storage.current(ref)
            condition = {"IfMatch": previous.etag} if previous.etag else {"IfNoneMatch": "*"}
            stale = sorted(set(previous.outputs) - set(manifest.output_keys))
            doc = replace(manifest, replaced_outputs=tuple(stale))
            try:
                await self.storage.put_json(key, doc.render(), metadata, **condition)
                return doc, not previous.etag
            except ClientError as exc:
                if error_code(exc) not in CONFLICT_CODES and http_status(exc) not in (409, 412):
                    raise
            log.info("manifest_changed_meanwhile", key=key)
            previous = await self.storage.previous_results(ref)
            if previous.done:
                return None
        raise TransientError(f"the manifest {key} kept changing; {MAX_SWAPS} attempts")

    async def discard(self, ref: ObjectRef, written: list[str]) -> None:
        """A superseded run: remove what it wrote, except what a manifest lists."""
        keep = set((await self.storage.previous_results(ref)).outputs)
        mine = sorted(set(written) - keep)
        if mine:
            await self.storage.delete(mine)
            log.info("superseded_outputs_removed", count=len(mine))

    async def sweep(self, ref: ObjectRef) -> None:
        """Outputs of `ref`'s version that a run ended before it could discard them (a kill
        between upload and manifest): found by their tag, never by the prefix alone."""
        layout = self.storage.layout
        tag = f".{version_tag(ref)}"
        prefix = layout.results_prefix(layout.source(ref.bucket, ref.key))
        found = [k for k in await self.storage.list_keys(prefix) if tag in k.rsplit("/", 1)[-1]]
        if found:
            await self.discard(ref, found)

    async def drop(self, keys: list[str] | tuple[str, ...]) -> None:
        """Outputs of the version a manifest replaced; they linger (loudly) if this fails."""
        if not keys:
            return
        try:
            await self.storage.delete(sorted(keys))
            log.info("stale_results_removed", count=len(keys))
        except Exception as exc:
            log.error("stale_results_left", count=len(keys), error=repr(exc), keys=list(keys)[:10])
