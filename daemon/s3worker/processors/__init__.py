"""Processors: one module per kind of data, plus the registry that routes files to them."""

from s3worker.processors.base import JobContext, Processor, ProcessResult, Sample
from s3worker.processors.registry import registry

__all__ = ["JobContext", "ProcessResult", "Processor", "Sample", "registry"]
