"""JSON Schemas of the wire messages qops speaks, shipped with the installed package.

The ``*.schema.json`` files in this directory are the single source of truth: the code
validates against them at run time (``qops.protocol.schemas``), from a source checkout and
from an installed wheel alike (they are package data of this package).
"""
