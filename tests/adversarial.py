"""The adversarial corpus as data: hostile keys, forged and malformed bodies, lying sizes,
gone objects, foreign buckets, corrupt and truncated files, memory bombs, overwrites,
duplicates, SNS envelopes, test events. Each case names the single outcome it must have:

- `manifest`: one manifest, of the version the case uploaded last; no report, no DLQ message;
- `failed`: one error report and one DLQ message carrying the same error (class given or not);
- `skipped`: acknowledged with nothing written and nothing dead-lettered;
- `one`: the processor decides (e.g. a truncated CSV may yield rejected rows or an error), but
  it is exactly one of `manifest` or `failed`.

`send(ctx)` uploads what the case needs and returns the message bodies it sent.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from procs import Pipeline, eventbridge_event

ECHO = b"echo\nrow\n"
SALES_HEADER = b"date,store,ticket_id,product,quantity,unit_price,revenue\n"
SALES = SALES_HEADER + b"2024-01-01,S1,T1,SKU-1,1,2.5,2.5\n" * 40
JOB_MEMORY_MB = 2560
SCRATCH_MAX_BYTES = 32 * 2**20
ROUTES = "bombs/=sales"


@dataclass
class Ctx:
    """What a case may touch: the pipeline, a foreign bucket, and what it uploaded."""

    pipe: Pipeline
    foreign: str
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> last event

    def put(self, key: str, data: bytes, notify: bool = True) -> dict[str, Any]:
        event = self.pipe.upload(key, data, notify=False)
        self.uploads[key] = event
        if notify:
            self.pipe.send(event)
        return event

    def send(self, body: str | dict[str, Any]) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        self.pipe.send(text)
        return text


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # manifest | failed | skipped | one
    key: str | None  # the object whose results are judged (None: a message-level case)
    send: Callable[[Ctx], list[str]]
    error: str | None = None  # the error class a `failed` case must carry


def obj(name: str, key: str, data: bytes, expect: str = "manifest", error: str | None = None):
    """A plain upload and its EventBridge event."""

    def send(ctx: Ctx) -> list[str]:
        return [json.dumps(ctx.put(key, data))]

    return Case(name, expect, key, send, error)


def edited(name: str, key: str, data: bytes, edit: Callable[[dict[str, Any]], Any], **kw: Any):
    """An upload whose event is edited (a forged field) before it is sent."""

    def send(ctx: Ctx) -> list[str]:
        event = ctx.put(key, data, notify=False)
        edit(event["detail"]["object"])
        return [ctx.send(event)]

    return Case(name, kw.pop("expect", "manifest"), key, send, kw.pop("error", None))


def body(name: str, make: Callable[[Ctx], str | dict[str, Any]], expect: str = "failed", **kw):
    """A message body made by hand; `key` (if any) names an object it must not create."""

    def send(ctx: Ctx) -> list[str]:
        return [ctx.send(make(ctx))]

    return Case(name, expect, kw.pop("key", None), send, kw.pop("error", "BadEventError"))


def notification(bucket: str, key: str, size: Any = 9, name: str = "ObjectCreated:Put") -> dict:
    s3 = {"bucket": {"name": bucket}, "object": {"key": key, "size": size}}
    return {"Records": [{"eventName": name, "eventSource": "aws:s3", "s3": s3}]}


def sns(message: Any) -> dict[str, Any]:
    text = message if isinstance(message, str) else json.dumps(message)
    return {"Type": "Notification", "MessageId": "m", "TopicArn": "arn:t", "Message": text}


def _set(field_: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda o: o.__setitem__(field_, value)


def _notified(key: str, encoded: str) -> Case:
    """An object announced by an S3 notification, whose keys are URL-encoded."""

    def send(ctx: Ctx) -> list[str]:
        ctx.put(key, ECHO, notify=False)
        return [ctx.send(notification(ctx.pipe.raw, encoded))]

    return Case(f"notification-key-{encoded[:20]}", "manifest", key, send)


def _sns_wrapped(key: str, raw_notification: bool) -> Case:
    def send(ctx: Ctx) -> list[str]:
        event = ctx.put(key, ECHO, notify=False)
        inner: Any = notification(ctx.pipe.raw, key) if raw_notification else event
        return [ctx.send(sns(inner))]

    return Case(
        f"sns-{'notification' if raw_notification else 'eventbridge'}", "manifest", key, send
    )


def _duplicate(ctx: Ctx) -> list[str]:
    text = json.dumps(ctx.put("dup/twice.txt", ECHO))
    ctx.send(text)
    return [text, text]


def _overwritten(ctx: Ctx) -> list[str]:
    first = ctx.put("over/written.txt", b"echo\nversion one\n")
    second = ctx.put("over/written.txt", b"echo\nversion two\nand three\n")
    return [json.dumps(first), json.dumps(second)]


def _older_event_late(ctx: Ctx) -> list[str]:
    first = ctx.put("late/older.txt", b"echo\none\n", notify=False)
    ctx.put("late/older.txt", b"echo\ntwo\n")
    return [json.dumps(ctx.uploads["late/older.txt"]), ctx.send(first)]


def _version_deleted(ctx: Ctx) -> list[str]:
    event = ctx.put("gone/version.txt", ECHO)
    version = event["detail"]["object"]["version-id"]
    boto3.client("s3").delete_object(Bucket=ctx.pipe.raw, Key="gone/version.txt", VersionId=version)
    return [json.dumps(event)]


def _delete_marker(ctx: Ctx) -> list[str]:
    event = ctx.put("gone/marker.txt", ECHO)
    boto3.client("s3").delete_object(Bucket=ctx.pipe.raw, Key="gone/marker.txt")
    return [json.dumps(event)]


def _foreign(ctx: Ctx) -> list[str]:
    resp = boto3.client("s3").put_object(Bucket=ctx.foreign, Key="theirs/same.txt", Body=ECHO)
    event = eventbridge_event(ctx.foreign, "theirs/same.txt", len(ECHO), resp["ETag"].strip('"'))
    return [ctx.send(event)]


def _many_records(ctx: Ctx) -> dict[str, Any]:
    records = notification(ctx.pipe.raw, "many/x.txt")["Records"] * 101
    return {"Records": records}


def _surrogate_key(ctx: Ctx) -> dict[str, Any]:
    return notification(ctx.pipe.raw, "bad\ud800key.txt")


def _corpus_files() -> list[Case]:
    rng = random.Random(11)
    truncated_gzip = gzip.compress(SALES * 20)[:700]
    header = SALES_HEADER.rstrip(b"\n") + b"," + b",".join(b"c%d" % i for i in range(1_000_000))
    return [
        obj("corrupt-gzip", "files/corrupt.csv.gz", b"\x1f\x8b\x08\x00" + rng.randbytes(4096),
            expect="failed"),
        obj("truncated-gzip", "files/truncated.csv.gz", truncated_gzip, expect="one"),
        obj("truncated-csv", "files/truncated.csv", SALES[:-17], expect="one"),
        obj("binary", "files/random.bin", rng.randbytes(8192), "failed", "UnknownFormatError"),
        obj("plain-text", "files/prose.txt", b"just some words\nnothing to see\n", "failed",
            "UnknownFormatError"),
        obj("nul-bytes", "files/nul.csv", SALES_HEADER + b"\x00" * 2000 + SALES[60:], "one"),
        obj("utf16-bom", "files/utf16.csv", SALES.decode().encode("utf-16"), "one"),
        obj("latin1", "files/latin1.csv", SALES.replace(b"S1", "Café".encode("latin-1")), "one"),
        obj("deep-json-file", "files/deep.json", b'{"a":' * 30_000, "failed", "RecursionError"),
        obj("huge-line", "bombs/huge-line.csv", SALES_HEADER + b"2024-01-01," + b"x" * 2**23,
            "one"),
        obj("million-columns", "bombs/million.csv", header + b"\n" + SALES[60:], "failed"),
        obj("memory-bomb", "echo/bomb.txt", b"echo bomb 4096\n", "failed", "JobTooLargeError"),
        obj("process-killed", "echo/die.txt", b"echo die\n", "failed", "JobTooLargeError"),
        obj("processor-error", "echo/corrupt.txt", b"echo corrupt\n", "failed", "BadDataError"),
        obj("processor-recursion", "echo/recursion.txt", b"echo raise RecursionError\n",
            "failed", "BadDataError"),
        obj("disk-full", "echo/enospc.txt", b"echo enospc\n", "failed", "TransientError"),
        obj("too-large-for-scratch", "files/huge.txt", b"echo\n" + b"x" * (20 * 2**20), "failed",
            "TooLargeError"),
        obj("zero-byte", "files/empty.csv", b"", "skipped"),
    ]  # fmt: skip


def _corpus_keys() -> list[Case]:
    keys = {
        "dotdot": "../../etc/passwd",
        "dotdot-inner": "a/../../b.txt",
        "leading-slash": "/leading/slash.txt",
        "double-slash": "dbl//slash//x.txt",
        "dot-component": "./dot/./x.txt",
        "component-255": "c255/" + "x" * 251 + ".txt",
        "component-300": "c300/" + "y" * 300 + ".txt",
        "key-978-bytes": "k978/" + "z" * 973,
        "unicode": "ünïcødé/データ/файл.txt",
        "emoji": "emoji/😀🚀.txt",
        "spaces-plus-percent": "with spaces/a+b%20c%2B.txt",
        "tab": "ctl/tab\there.txt",  # (a newline the emulator cannot store: PUT gives 404)
        "control-char": "ctl/bell\x07.txt",
        "backslash": "back\\slash\\x.txt",
        "parent-of-another": "nest/a.txt",
        "child-of-another": "nest/a.txt/b.txt",
        "errors-dir-name": "_errors/x.txt",
        "manifest-name": "m/_manifest.json",
        "tag-lookalike": "m/lines.0123456789abcdef.json",
        "rtl-override": "rtl/\u202etxt.exe",
    }
    cases = [obj(f"key-{n}", k, ECHO) for n, k in keys.items()]
    cases += [
        obj("key-1000-bytes", "k1000/" + "w" * 994, ECHO, "failed", "KeyTooLongError"),
        obj("key-1024-bytes", "k1024/" + "v" * 1018, ECHO, "failed", "KeyTooLongError"),
        _notified("note/with space+plus.txt", "note/with+space%2Bplus.txt"),
        _notified("note/100%.txt", "note/100%25.txt"),
        _notified("note/ünï.txt", "note/%C3%BCn%C3%AF.txt"),
    ]
    return cases


def _corpus_events() -> list[Case]:
    return [
        body("not-json", lambda c: "this is not json {"),
        body("json-array", lambda c: "[1, 2, 3]"),
        body("json-string", lambda c: '"Records"'),
        body("json-null", lambda c: "null"),
        body("empty-object", lambda c: "{}"),
        body("nested-json-body", lambda c: "[" * 100_000),
        body("records-not-list", lambda c: {"Records": {"a": 1}}),
        body("record-without-s3", lambda c: {"Records": [{"eventName": "ObjectCreated:Put"}]}),
        body("too-many-records", _many_records),
        body("eventbridge-without-object",
             lambda c: {"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}}}),
        body("empty-key", lambda c: notification(c.pipe.raw, "")),
        body("lone-surrogate-key", _surrogate_key),
        body("lone-surrogate-bucket", lambda c: notification("raw\udc80", "k.txt")),
        body("size-1e400", lambda c: json.dumps(notification(c.pipe.raw, "s/x.txt", 1.0))
             .replace('"size": 1.0', '"size": 1e400')),
        body("size-negative", lambda c: notification(c.pipe.raw, "s/y.txt", -1)),
        body("size-text", lambda c: notification(c.pipe.raw, "s/z.txt", "big")),
        body("sns-message-not-json", lambda c: sns("{not json")),
        body("sns-in-sns", lambda c: sns(sns(notification(c.pipe.raw, "x.txt")))),
        body("test-event", lambda c: {"Service": "Amazon S3", "Event": "s3:TestEvent"},
             expect="skipped"),
        body("sns-test-event", lambda c: sns({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
             expect="skipped"),
        body("object-deleted", lambda c: {**eventbridge_event(c.pipe.raw, "d.txt", 1, "e"),
                                          "detail-type": "Object Deleted"}, expect="skipped"),
        body("object-removed", lambda c: notification(c.pipe.raw, "r.txt",
                                                      name="ObjectRemoved:Delete"),
             expect="skipped"),
        body("folder-marker", lambda c: notification(c.pipe.raw, "folder/", 0), expect="skipped"),
        body("never-existed", lambda c: eventbridge_event(c.pipe.raw, "ghost/x.txt", 9, "0" * 32),
             key="ghost/x.txt", error="ObjectGoneError"),
        body("bucket-nonexistent", lambda c: notification("no-such-bucket-x1", "x.txt"),
             error="WrongBucketError"),
        Case("foreign-bucket", "failed", None, _foreign, "WrongBucketError"),
        _sns_wrapped("sns/eventbridge.txt", raw_notification=False),
        _sns_wrapped("sns/notification.txt", raw_notification=True),
        edited("size-lies-small", "lie/small.txt", b"echo\n" + b"x" * 100_000, _set("size", 5)),
        edited("size-lies-huge", "lie/huge.txt", ECHO, _set("size", 10**13)),
        edited("size-lies-zero", "lie/zero.txt", ECHO, _set("size", 0)),  # S3's size decides
        edited("empty-but-size-lies", "lie/empty.txt", b"", _set("size", 9), expect="skipped"),
        edited("etag-forged", "forged/etag.txt", ECHO,
               lambda o: (o.pop("version-id"), o.__setitem__("etag", "f" * 32)),
               expect="skipped"),  # the key holds other content: superseded, nothing written
        edited("version-forged", "forged/version.txt", ECHO, _set("version-id", "not-a-version"),
               expect="skipped"),
        Case("version-deleted", "failed", "gone/version.txt", _version_deleted, "ObjectGoneError"),
        Case("delete-marker", "manifest", "gone/marker.txt", _delete_marker),
        Case("duplicate-event", "manifest", "dup/twice.txt", _duplicate),
        Case("overwritten-before-processing", "manifest", "over/written.txt", _overwritten),
        Case("older-event-arrives-late", "manifest", "late/older.txt", _older_event_late),
    ]  # fmt: skip


def corpus() -> list[Case]:
    return _corpus_keys() + _corpus_events() + _corpus_files()
