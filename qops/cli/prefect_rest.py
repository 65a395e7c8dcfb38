"""A small client of the Prefect REST API for one-off ``qops`` commands, without Prefect.

Importing Prefect costs a one-off command 1–3 s and its flow engine 1.5–2 s more, more than
the work of ``qops sources add`` or of syncing a small database. These commands need
only a few API calls: saving and deleting a block, and recording a flow run with its logs
and table artifact. They are made here with ``httpx``, on the routes and bodies Prefect's
own client uses.

A block's type and schema are registered from :data:`REGISTRATIONS_FILE`, the payloads
Prefect computes for each block class, written by ``scripts/prefect_block_registrations.py``
(a test fails when they differ from what the installed Prefect computes), so a block saved
here is the block Prefect would save, and ``Block.load`` reads it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import httpx
from pydantic import BaseModel, ConfigDict, JsonValue

from qops.cli.prefect_env import PrefectApi, api_credentials
from qops.errors import QopsError
from qops.timeutil import utc_now

logger = logging.getLogger(__name__)

REGISTRATIONS_FILE = Path(__file__).with_name("prefect_blocks.json")
"""Block type and schema payloads of the blocks the CLI saves, keyed by block type slug."""

StateType = Literal["RUNNING", "COMPLETED", "FAILED", "CRASHED", "CANCELLED"]
"""The flow run states the CLI sets."""

_STATE_NAMES: dict[StateType, str] = {
    "RUNNING": "Running",
    "COMPLETED": "Completed",
    "FAILED": "Failed",
    "CRASHED": "Crashed",
    "CANCELLED": "Cancelled",
}


class PrefectRestError(QopsError):
    """A call to the Prefect API failed.

    Args:
        api_url: The API.
        action: What was being done (``save block qcodes-sync-source/lab``).
        reason: The HTTP status and body, or the transport error.
    """

    def __init__(self, api_url: str, action: str, reason: str) -> None:
        self.api_url = api_url
        self.action = action
        self.reason = reason
        super().__init__(f"Prefect API {api_url}: {action} failed: {reason}")


class BlockRegistration(BaseModel):
    """What Prefect registers for a block class: its block type and its block schema."""

    model_config = ConfigDict(frozen=True)

    block_type: dict[str, JsonValue]
    """``BlockTypeCreate`` fields: name, slug, logo_url, documentation_url, description,
    code_example."""
    block_schema: dict[str, JsonValue]
    """``BlockSchemaCreate`` fields but the block type id: fields, capabilities, version,
    and the checksum Prefect computes from the fields."""

    @property
    def slug(self) -> str:
        """The block type slug."""
        return str(self.block_type["slug"])

    @property
    def checksum(self) -> str:
        """The block schema checksum."""
        return str(self.block_schema["checksum"])


def load_registrations(path: Path = REGISTRATIONS_FILE) -> dict[str, BlockRegistration]:
    """Return the stored block registrations, keyed by block type slug.

    Raises:
        PrefectRestError: The file is missing or malformed.
    """
    try:
        raw = json.loads(path.read_text())
        return {slug: BlockRegistration.model_validate(value) for slug, value in raw.items()}
    except (OSError, ValueError) as e:
        raise PrefectRestError("(none)", f"read block registrations {path}", str(e)) from e


class FlowRunRef(BaseModel):
    """A flow run the CLI created."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str


class PrefectRest:
    """Calls to one Prefect API; use as a context manager (closes its connections).

    Args:
        api: The API (its URL; credentials come from ``PREFECT_API_KEY`` or
            ``PREFECT_API_AUTH_STRING`` in the environment or the active profile).
        timeout_s: Timeout of each request.
    """

    def __init__(self, api: PrefectApi, timeout_s: float = 10.0) -> None:
        self.api_url = api.url.rstrip("/")
        key, auth_string = api_credentials()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        auth = tuple(auth_string.split(":", 1)) if auth_string and ":" in auth_string else None
        self._http = httpx.Client(
            base_url=self.api_url + "/",
            headers=headers,
            auth=auth,  # type: ignore[arg-type]  # a (user, password) pair
            timeout=timeout_s,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.close()

    def _call(
        self,
        method: str,
        route: str,
        action: str,
        body: JsonValue = None,
        ok: tuple[int, ...] = (200, 201, 204),
        missing_ok: bool = False,
    ) -> httpx.Response | None:
        """One request; ``None`` for a 404 when ``missing_ok``, else the ``ok`` response.

        Raises:
            PrefectRestError: Any other status, or the request failed.
        """
        try:
            response = self._http.request(method, route, json=body)
        except httpx.HTTPError as e:
            raise PrefectRestError(self.api_url, action, f"{type(e).__name__}: {e}") from e
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code not in ok:
            raise PrefectRestError(
                self.api_url, action, f"HTTP {response.status_code}: {response.text[:300]}"
            )
        return response

    def _json(self, response: httpx.Response | None) -> dict[str, JsonValue]:
        assert response is not None
        data = response.json()
        assert isinstance(data, dict)
        return data

    def register_block(self, registration: BlockRegistration) -> tuple[str, str]:
        """Register the block type and schema as Prefect does; return their ids.

        Idempotent: an existing block type is updated only when its description, URLs or
        code example differ; an existing schema (same checksum) is reused.
        """
        slug = registration.slug
        action = f"register block type {slug}"
        found = self._call("GET", f"block_types/slug/{slug}", action, missing_ok=True)
        if found is None:
            created = self._call("POST", "block_types/", action, dict(registration.block_type))
            block_type_id = str(self._json(created)["id"])
        else:
            server = self._json(found)
            block_type_id = str(server["id"])
            updatable = ("logo_url", "documentation_url", "description", "code_example")
            update = {k: registration.block_type.get(k) for k in updatable}
            if any(server.get(k) != v for k, v in update.items()):
                self._call("PATCH", f"block_types/{block_type_id}", action, update)
        checksum = registration.checksum
        action = f"register block schema {slug} {checksum}"
        schema = self._call("GET", f"block_schemas/checksum/{checksum}", action, missing_ok=True)
        if schema is None:
            body = {
                k: v
                for k, v in registration.block_schema.items()
                if k in ("fields", "capabilities", "version")
            }
            schema = self._call(
                "POST", "block_schemas/", action, {**body, "block_type_id": block_type_id}
            )
        return block_type_id, str(self._json(schema)["id"])

    def _block_document_id(self, slug: str, name: str, action: str) -> str | None:
        found = self._call(
            "GET", f"block_types/slug/{slug}/block_documents/name/{name}", action, missing_ok=True
        )
        return None if found is None else str(self._json(found)["id"])

    def save_block(
        self, registration: BlockRegistration, name: str, data: Mapping[str, JsonValue]
    ) -> str:
        """Save (or overwrite) block document ``name`` of the registered type; return its id."""
        block_type_id, block_schema_id = self.register_block(registration)
        action = f"save block {registration.slug}/{name}"
        created = self._call(
            "POST",
            "block_documents/",
            action,
            {
                "name": name,
                "data": dict(data),
                "block_schema_id": block_schema_id,
                "block_type_id": block_type_id,
                "is_anonymous": False,
            },
            ok=(200, 201, 409),
        )
        assert created is not None
        if created.status_code != 409:
            return str(self._json(created)["id"])
        document_id = self._block_document_id(registration.slug, name, action)
        if document_id is None:
            raise PrefectRestError(self.api_url, action, "exists (409) but cannot be read")
        self._call(
            "PATCH",
            f"block_documents/{document_id}",
            action,
            {"block_schema_id": block_schema_id, "data": dict(data), "merge_existing_data": False},
        )
        return document_id

    def delete_block(self, slug: str, name: str) -> bool:
        """Delete block document ``name`` of type ``slug``; return whether there was one."""
        action = f"delete block {slug}/{name}"
        document_id = self._block_document_id(slug, name, action)
        if document_id is None:
            return False
        self._call("DELETE", f"block_documents/{document_id}", action, missing_ok=True)
        return True

    def create_flow_run(
        self, flow_name: str, parameters: Mapping[str, JsonValue], tags: list[str]
    ) -> FlowRunRef:
        """Create a flow run of flow ``flow_name`` (created if new), already ``RUNNING``."""
        action = f"create a flow run of {flow_name}"
        flow = self._json(self._call("POST", "flows/", action, {"name": flow_name}))
        created = self._json(
            self._call(
                "POST",
                "flow_runs/",
                action,
                {
                    "flow_id": flow["id"],
                    "parameters": dict(parameters),
                    "tags": list(tags),
                    "state": {"type": "RUNNING", "name": "Running"},
                },
            )
        )
        return FlowRunRef(id=str(created["id"]), name=str(created["name"]))

    def set_state(self, flow_run: FlowRunRef, state: StateType, message: str | None) -> None:
        """Move the flow run to ``state`` (forced: the CLI ran it, no orchestration)."""
        self._call(
            "POST",
            f"flow_runs/{flow_run.id}/set_state",
            f"set flow run {flow_run.id} {state}",
            {
                "state": {
                    "type": state,
                    "name": _STATE_NAMES[state],
                    "message": message,
                },
                "force": True,
            },
        )

    def write_logs(
        self, flow_run: FlowRunRef, logger_name: str, lines: list[tuple[int, str]]
    ) -> None:
        """Attach ``(level, message)`` log lines to the flow run."""
        if not lines:
            return
        stamp = utc_now().isoformat()
        self._call(
            "POST",
            "logs/",
            f"write logs of flow run {flow_run.id}",
            [
                {
                    "name": logger_name,
                    "level": level,
                    "message": message,
                    "timestamp": stamp,
                    "flow_run_id": flow_run.id,
                }
                for level, message in lines
            ],
        )

    def create_table_artifact(
        self,
        flow_run: FlowRunRef,
        key: str,
        table: list[dict[str, str | int]],
        description: str,
    ) -> str:
        """Publish a table artifact of the flow run; return its id."""
        created = self._call(
            "POST",
            "artifacts/",
            f"create artifact {key}",
            {
                "key": key,
                "type": "table",
                "data": json.dumps(table),
                "description": description,
                "flow_run_id": flow_run.id,
            },
        )
        return str(self._json(created)["id"])

    def apply_automation(self, body: Mapping[str, JsonValue]) -> tuple[str, bool]:
        """Create automation ``body["name"]``, or replace the one of that name.

        Returns:
            The automation's id, and whether it was created (not replaced).
        """
        name = str(body["name"])
        action = f"apply automation {name}"
        found = self._call(
            "POST", "automations/filter", action, {"automations": {"name": {"any_": [name]}}}
        )
        assert found is not None
        existing = [a for a in found.json() if isinstance(a, dict) and a.get("name") == name]
        if not existing:
            created = self._json(self._call("POST", "automations/", action, dict(body)))
            return str(created["id"]), True
        automation_id = str(existing[0]["id"])
        self._call("PUT", f"automations/{automation_id}", action, dict(body))
        for duplicate in existing[1:]:  # one automation per name
            self._call("DELETE", f"automations/{duplicate['id']}", action, missing_ok=True)
        return automation_id, False
