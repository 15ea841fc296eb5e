"""What ``llmtrail export --format bedrock`` and ``llmtrail import`` ask the server, on the
caller's own workspace.

* ``GET /api/bedrock/records`` (``READ``; bodies with ``BODIES``, audited) — records as
  Bedrock writes them (`InvocationRecord.to_dict` ``"bedrock"``: what llmtrail derived on
  import left out), newest first, with ``/api/records``' time and cursor parameters and
  pages of up to `MAX_EXPORT_PAGE` records (each page is one query of the store, whose cost
  hardly grows with the page: an export of 100,000 records asks 20 times, not 100). The
  list route answers the full record, in which a derived ``status`` cannot be told from a
  given one; only the server still knows which keys it derived.
* ``GET /api/bedrock/body?requestId=ID&part=input|output`` (``READ`` and ``BODIES``,
  audited) — the gzip'd JSON of a record's body offloaded to the object store, so that an
  export writes it as a ``data/`` object; only a record of the caller's workspace is found.
* ``GET /api/imports?source=URI`` (``INGEST``) — the manifest of the objects imported from
  under ``URI``: ``{uri: {"etag", "offset", "done", ...}}``.
* ``PUT /api/imports`` ``{"uri", "etag", "offset", "done", "stored", "skipped"}``
  (``INGEST``) — note how far an object is imported (``offset``: its lines sent and
  acknowledged); ``{"objects": [entry, ...]}`` notes several in one write (the objects
  one ingest request carried).
* ``POST /api/imports/known`` ``{"requestIds", "start", "end"}`` (``INGEST``) — which of
  those request ids the workspace holds with a timestamp in ``[start, end]``.

Why a manifest *and* a check by request id: the ingest path's resend window is one hour, so
an object imported again a month later would be stored twice. The manifest (in the
StateStore, so every server of a cluster shares it) skips whole objects already done and
resumes a partial one at its offset; the request-id check covers what the manifest cannot
know — an object rewritten under a new ETag, a manifest lost, the same records under another
prefix.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmtrail.errors import Forbidden, LlmtrailError, NotFound, ValidationError
from llmtrail.record import InvocationRecord
from llmtrail.security.principal import Permission, principal_of
from llmtrail.server.access import guarded_route
from llmtrail.server.api import answer, record_query
from llmtrail.server.audit_hooks import audit_body_read
from llmtrail.server.params import int_param, json_object
from llmtrail.server.problems import from_error
from llmtrail.server.record_bodies import OMITTED, bodies_wanted, has_body, without_bodies
from llmtrail.server.runtime import Runtime
from llmtrail.store.interfaces import RecordQuery
from llmtrail.timerange import parse_range

NAMESPACE = "bedrock-imports"  # one per workspace: ``bedrock-imports:<workspace>``
MAX_KNOWN = 50_000  # request ids in one known-check
MAX_EXPORT_PAGE = 5000  # records in one page of /api/bedrock/records
MAX_NOTES = 10_000  # manifest entries in one PUT /api/imports
MAX_BODY_BYTES = 8 * 2**20
_ENTRY_KEYS = ("etag", "offset", "done", "stored", "skipped")


class ImportAPI:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def routes(self) -> list[Route]:
        return [
            guarded_route("/api/bedrock/records", self.records, Permission.READ, ["GET"]),
            guarded_route("/api/bedrock/body", self.body, Permission.READ, ["GET"]),
            guarded_route("/api/imports", self.manifest, Permission.INGEST, ["GET"]),
            guarded_route("/api/imports", self.note, Permission.INGEST, ["PUT"]),
            guarded_route("/api/imports/known", self.known, Permission.INGEST, ["POST"]),
        ]

    async def records(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        try:
            with_bodies = bodies_wanted(principal, request.query_params.get("bodies"))
            params = dict(request.query_params)
            limit = int_param(
                params.pop("limit", None), "limit", default=100, minimum=1, maximum=MAX_EXPORT_PAGE
            )
            query = record_query(
                params,
                request.query_params.getlist("metadata"),
                workspace=principal.workspace,
                with_bodies=with_bodies,
            )
            query = dataclasses.replace(query, limit=limit)
        except LlmtrailError as exc:
            return from_error(exc)
        try:
            page = await asyncio.to_thread(self.runtime.records.find, query)
        except LlmtrailError as exc:
            return from_error(exc)
        if with_bodies:
            read = [r.request_id for r in page.records if has_body(r.data)]
            if read:
                await audit_body_read(self.runtime, request, "export", read)
        headers = None if principal.can(Permission.BODIES) else OMITTED
        body = bedrock_page(page.records, page.next_cursor, with_bodies)
        return Response(body, 200, headers, "application/json")

    async def body(self, request: Request) -> Response:
        principal = principal_of(request.scope)
        request_id = request.query_params.get("requestId", "")
        part = request.query_params.get("part", "")
        if not principal.can(Permission.BODIES):
            return from_error(Forbidden("bodies", "this key does not have the 'bodies' permission"))
        if part not in ("input", "output"):
            return from_error(ValidationError("part", f"must be input or output, got {part!r}"))

        def work() -> Response:
            record = self.runtime.records.get(request_id, principal.workspace)
            section = record.data.get(part) if record is not None else None
            uri = section.get(f"{part}BodyS3Path") if isinstance(section, dict) else None
            # only the object the server wrote for this very record (its recordId in the
            # name): a path given at ingest cannot point at another record's body
            mine = record is not None and f"/{record.record_id}_{part}.json.gz"
            if not isinstance(uri, str) or not mine or not uri.endswith(mine):
                raise NotFound(f"no offloaded {part} body for requestId {request_id!r}")
            return Response(self.runtime.objects.get(uri), 200, media_type="application/gzip")

        answered = await answer(work)
        if answered.status_code == 200:
            await audit_body_read(self.runtime, request, "export", [request_id])
        return answered

    async def manifest(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        source = request.query_params.get("source", "")

        def work() -> dict[str, Any]:
            entries = self.runtime.state.list(f"{NAMESPACE}:{workspace}")
            return {"objects": {k: v for k, v in entries.items() if k.startswith(source)}}

        return await answer(work)

    async def note(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        try:
            body = await json_object(request, MAX_BODY_BYTES)
            several = "objects" in body
            items = body["objects"] if several else [body]
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ValidationError("objects", "must be a list of manifest entries")
            if len(items) > MAX_NOTES:
                raise ValidationError("objects", f"has {len(items)}; the limit is {MAX_NOTES}")
            entries = [_entry(item) for item in items]
        except LlmtrailError as exc:
            return from_error(exc)
        at = datetime.now(UTC).isoformat()
        for _, entry in entries:
            entry["at"] = at
        namespace = f"{NAMESPACE}:{workspace}"

        def work() -> dict[str, Any]:
            self.runtime.state.put_many([(namespace, uri, entry) for uri, entry in entries])
            answered = [{"uri": uri, **entry} for uri, entry in entries]
            return {"objects": answered} if several else answered[0]

        return await answer(work)

    async def known(self, request: Request) -> Response:
        workspace = principal_of(request.scope).workspace
        try:
            body = await json_object(request, MAX_BODY_BYTES)
            ids = body.get("requestIds")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise ValidationError("requestIds", "must be a list of strings")
            if len(ids) > MAX_KNOWN:
                raise ValidationError("requestIds", f"has {len(ids)}; the limit is {MAX_KNOWN}")
            for name in ("start", "end"):  # both ends given, the end inclusive
                if not body.get(name):
                    raise ValidationError(name, "is required: an RFC 3339 timestamp")
            known = parse_range(
                body["start"],
                body["end"],
                now=datetime.now(UTC),
                default=timedelta(0),
                end_inclusive=True,
            )
            start, end = known.start, known.end
        except LlmtrailError as exc:
            return from_error(exc)
        wanted = set(ids)

        def work() -> dict[str, Any]:
            return {"known": sorted(stored_ids(self.runtime, workspace, start, end) & wanted)}

        return await answer(work)


def _entry(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The URI and manifest entry a note names."""
    uri = body.get("uri")
    if not isinstance(uri, str) or not uri:
        raise ValidationError("uri", "is required (the object's URI)")
    entry = {k: body.get(k) for k in _ENTRY_KEYS}
    if not isinstance(entry["offset"], int) or entry["offset"] < 0:
        raise ValidationError("offset", "must be a whole number of lines, 0 or more")
    return uri, entry


def stored_ids(runtime: Runtime, workspace: str, start: datetime, end: datetime) -> set[str]:
    """The request ids of the workspace's records with a timestamp in ``[start, end)``."""
    found: set[str] = set()
    cursor = None
    while True:
        page = runtime.records.find(
            RecordQuery(
                workspace=workspace,
                start=start,
                end=end,
                limit=1000,
                cursor=cursor,
                with_bodies=False,
            )
        )
        found.update(r.request_id for r in page.records)
        cursor = page.next_cursor
        if not cursor or not page.records:
            return found


def bedrock_page(records: list[InvocationRecord], cursor: str | None, with_bodies: bool) -> bytes:
    """The answer of ``GET /api/bedrock/records``: each record's Bedrock view."""
    docs = [r.to_dict("bedrock") for r in records]
    if not with_bodies:
        docs = [without_bodies(d) for d in docs]
    return orjson.dumps({"records": docs, "nextCursor": cursor})
