"""``GET /jobs`` query parameters and the selection they make, as the real server reads them.

Parameters are read in the server's order, so that for example an invalid ``constraint`` is
reported before an invalid ``status``. Values the server converts with ``int()`` (``id``, and
``num`` when history is queried) raise ``ValueError`` here, which the app turns into the same
HTTP 500 the server gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .store import JobRecord, JobStore


class ListError(Exception):
    """A listing error the server answers with a JSON body (``status`` may be 200!)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class ListQuery:
    """What a ``GET /jobs`` asks for."""

    active: bool = True
    completed: bool = False
    num: str | int = 1
    ids: list[str] | None = None
    status: str | None = None
    detail: bool = False
    constraint: tuple[str, str] | None = None
    name: str | None = None
    workflow: bool = False


def parse_query(args: Mapping[str, str]) -> ListQuery:
    """Read the parameters (first value of each) like the server; raise ``ListError``."""
    query = ListQuery()
    if "completed" in args:
        if args.get("completed") == "true":
            query.completed, query.active = True, False
        if "num" in args:
            query.num = args["num"]
    if "constraint" in args:
        parts = args["constraint"].split("=")
        if len(parts) != 2:
            raise ListError("Invalid constraint", 400)
        query.constraint = (parts[0], parts[1])
    if "name" in args:
        query.name = args["name"]
    if "all" in args:
        query.completed = query.active = True
        query.num = -1
    if "status" in args:
        query.status = args["status"]
        if query.status not in ("idle", "running"):
            # The server builds this answer without a status code, so it is a 200.
            raise ListError("invalid status specified", 200)
    query.detail = "detail" in args
    if args.get("workflow") == "true":
        query.workflow = True
        query.num = -1
    if "id" in args:
        query.ids = args["id"].split(",")
        if not query.workflow:
            query.completed = query.active = True
    return query


def _label_matches(record: JobRecord, key: str, value: str) -> bool:
    # Label keys become ClassAd attribute names, which are case-insensitive; values are not.
    wanted = key.lower()
    return any(k.lower() == wanted and v == value for k, v in record.labels.items())


def select(store: JobStore, owner: str, query: ListQuery) -> list[JobRecord]:
    """The owner's jobs the query selects, in the server's order.

    History (finished jobs, most recently finished first, at most ``num``; ``num`` <= 0 means no
    limit) comes before the queue (in id order). ``status`` replaces both with the queued jobs
    in that state.
    """
    num = query.num
    ids = None
    if query.ids is not None:
        if query.workflow:
            int(query.ids[0])  # the server reads only the workflow id (and crashes on junk)
            return []  # the emulator has no workflows, so no workflow has jobs
        ids = [int(i) for i in query.ids]
        num = len(ids)
    records = store.owned(owner, ids)
    if query.name is not None:
        records = [r for r in records if r.name == query.name]
    if query.constraint is not None:
        key, value = query.constraint
        records = [r for r in records if _label_matches(r, key, value)]
    if query.status is not None:
        return sorted(
            (r for r in records if r.in_queue and r.status == query.status), key=lambda r: r.id
        )
    result: list[JobRecord] = []
    if query.completed:
        limit = int(num)
        history = sorted(
            (r for r in records if not r.in_queue),
            key=lambda r: (r.ended or 0.0, r.id),
            reverse=True,
        )
        result.extend(history if limit <= 0 else history[:limit])
    if query.active:
        result.extend(sorted((r for r in records if r.in_queue), key=lambda r: r.id))
    return result
