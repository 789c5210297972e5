"""One error hierarchy. Permanent errors go to the DLQ at once; transient ones are retried."""

from __future__ import annotations


class S3WorkerError(Exception):
    """Base class of every error the product raises on purpose."""


class ConfigError(S3WorkerError, ValueError):
    """A setting is missing or invalid; the message names the variable."""


class PermanentError(S3WorkerError):
    """Retrying cannot help: report it and send the message to the DLQ."""


class BadEventError(PermanentError):
    """The SQS message body is not an event this product understands."""


class UnknownFormatError(PermanentError):
    """No processor recognises the file; the message says what was seen."""


class BadDataError(PermanentError):
    """The file is recognised but its content cannot be processed."""


class ObjectGoneError(PermanentError):
    """The object (or the version the event names) no longer exists."""


class TooLargeError(PermanentError):
    """The object can never fit in the scratch space, even when it is empty."""


class JobTimeoutError(PermanentError):
    """Processing took longer than S3WORKER_JOB_TIMEOUT_SECONDS; the worker process was ended."""


class JobTooLargeError(PermanentError):
    """The file needs more memory than one job may use on this worker."""


class WrongBucketError(BadEventError):
    """The event names a bucket that is not one of S3WORKER_INPUT_BUCKETS."""


class KeyTooLongError(PermanentError):
    """A result key would exceed S3's 1,024-byte key limit."""


class AttemptsExhaustedError(PermanentError):
    """Every attempt the queue allows ended without a verdict (the worker died or was stopped)."""


class TransientError(S3WorkerError):
    """Worth retrying later: throttling, 5xx, timeouts, a full disk, a crashed worker process."""


class SupersededError(S3WorkerError):
    """The object changed since the event was sent; the newer version has its own event."""
