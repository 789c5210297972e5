"""The shared base of the table-shaped processors.

`processor` is light (routing imports it); every other module here is the pandas/pyarrow
side (reading, typing columns, outputs, group sums, spilling), imported only inside worker
processes.
"""
