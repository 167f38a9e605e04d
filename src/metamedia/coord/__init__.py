"""Coordination between server processes over one data directory: who is primary, what changed.

`metamedia serve --workers N` runs N processes over one store of record; the modules here let each
process see the others' writes, share the limits, and leave single-owner work to one of them.
"""
