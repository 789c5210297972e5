"""The start Lambda's parts: settings, events, observe, decide, act, cleanup, metrics, logs.

`lambda/start_worker.py` is the handler; `lambda/build.py` zips it with this package and the
daemon's shared pure `s3worker.skiprules`.
"""
