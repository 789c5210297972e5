"""s3worker: process every file uploaded to S3 on EC2 workers that run only while there is work."""

__version__ = "0.1.0"
