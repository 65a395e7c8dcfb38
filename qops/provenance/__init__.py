"""Calibration provenance on W3C PROV-DM: parameter versions, activities and their relations.

Entities are :class:`~qops.provenance.models.ParameterVersion` records, activities are
calibration task runs, agents are the user or system that ran them. The layers point one
way: ``api`` -> ``service`` -> ``repository`` -> ``models``; ``recorder`` and ``outbox``
write, ``service`` reads, ``prov_json`` exports.
"""
