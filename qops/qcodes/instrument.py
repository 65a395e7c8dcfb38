"""``QHMetaData``: a QCoDeS instrument that carries tags and attributes into a run's snapshot.

Add it to the station under the name ``qh_meta``; its ``tags`` and ``attributes``
parameters are recorded in every run's snapshot and the sync turns them into the
dataset's tags and attributes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qcodes.instrument import Instrument
from qcodes.validators import Dict, Lists, Strings

from qops.qcodes.errors import QHMetaDataNameError
from qops.qcodes.metadata import QH_META_NAME


class QHMetaData(Instrument):
    """Per-run tags and attributes recorded in the QCoDeS snapshot.

    Args:
        name: Must be ``qh_meta``.
        static_tags: Tags kept across :meth:`reset`.
        static_attributes: Attributes kept across :meth:`reset`; a dynamic attribute of the
            same key overrides one.
        **kwargs: Passed to :class:`qcodes.instrument.Instrument`.

    Raises:
        QHMetaDataNameError: ``name`` is not ``qh_meta``.
    """

    def __init__(
        self,
        name: str,
        static_tags: Iterable[str] | None = None,
        static_attributes: Mapping[str, object] | None = None,
        **kwargs: Any,
    ) -> None:
        if name != QH_META_NAME:
            raise QHMetaDataNameError(name)
        super().__init__(name, **kwargs)
        self._static_tags: set[str] = {str(t) for t in static_tags or ()}
        self._static_attributes: dict[str, object] = {
            str(k): v for k, v in (static_attributes or {}).items()
        }
        self._tags: set[str] = set()
        self._attributes: dict[str, object] = {}
        self.add_parameter(
            "tags",
            label="Tags",
            get_cmd=lambda: sorted(self._static_tags | self._tags),
            set_cmd=False,
            vals=Lists(Strings()),
            docstring="Static and dynamic tags, deduplicated and sorted.",
        )
        self.add_parameter(
            "attributes",
            label="Attributes",
            get_cmd=lambda: {**self._static_attributes, **self._attributes},
            set_cmd=False,
            vals=Dict(),
            docstring="Static attributes overridden by dynamic ones of the same key.",
        )
        self._refresh()

    def _refresh(self) -> None:
        # A station snapshot reads cached values: refresh them at every change.
        self.tags.get()
        self.attributes.get()

    def reset(self) -> None:
        """Clear the dynamic tags and attributes; the static ones stay."""
        self._tags.clear()
        self._attributes.clear()
        self._refresh()

    def add_tags(self, tags: Iterable[str]) -> None:
        """Add dynamic tags (duplicates are ignored)."""
        self._tags.update(str(t) for t in tags)
        self._refresh()

    def add_attributes(self, attributes: Mapping[str, object]) -> None:
        """Add or replace dynamic attributes.

        Values are kept as they are (text, numbers, a parameter's ``snapshot()``), so the
        snapshot records them as values; the sync stores text as it is, a parameter's
        snapshot as its value with unit and anything else as JSON text.
        """
        self._attributes.update({str(k): v for k, v in attributes.items()})
        self._refresh()

    def get_idn(self) -> dict[str, str | None]:
        """Identify as a software instrument (there is no hardware to ask)."""
        return {"vendor": "qops", "model": "QHMetaData", "serial": None, "firmware": None}
