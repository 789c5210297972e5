"""The local demo: the whole s3worker pipeline on an embedded AWS (moto in server mode)."""
