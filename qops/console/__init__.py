"""The browser console: read-only pages over the catalog, provenance and the chip.

:func:`qops.console.app.create_app` builds the one HTTP app that ``qops api serve`` runs:
the JSON APIs (provenance, catalog) and the console's HTML pages, with every script, style
and font served from ``/static`` (the console works on an offline lab network).
"""
