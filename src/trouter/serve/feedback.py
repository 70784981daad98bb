"""Outcome feedback: clients score the gateway's answers, and a TRouter adapts to the scores.

    POST /v1/feedback   {"request_id": "<the answer's x-trouter-request-id>", "score": 0.8}

Every answer the gateway gives carries an `x-trouter-request-id` header. A client, a user's
thumbs up or down, or an offline evaluator that learns how good an answer was reports a score in
[0, 1] under that id; it lands in the store's `feedback` table. Only the client that sent a
request may score it (with client keys on), and only an answered one.

`feedback_dataset` turns the scored requests into a `RoutingDataset`: the text the router read
(or would have, for a request that named its model), the model that answered (after any
fallback) and its score, one observed model per query, the others unscored. `trouter adapt
--router DIR --db URL --out DIR2` feeds it to `TRouter.adapt`. A request scored twice counts
once, with its latest score. Feedback an adaptation used (ids up to the router's
`feedback_through`) is skipped, so adapting again uses only new feedback; feedback that changed
nothing is not counted as used, so small rounds of it add up until they clear `adapt`'s gate.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
import pandas as pd
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from trouter.errors import DataError
from trouter.serve.errors import GatewayError, bad_request
from trouter.serve.request import parse_json_object, read_body
from trouter.store import DecisionLog, Feedback, Store

if TYPE_CHECKING:
    from trouter.data.dataset import RoutingDataset
    from trouter.serve.app import Gateway


async def record_feedback(gw: Gateway, request: Request) -> Response:
    client = gw.auth.check(request.headers.get("authorization"))
    body = parse_json_object(
        await read_body(request, gw.config.max_body_bytes), "request_id and score"
    )
    request_id, score = _checked(body)
    found = await anyio.to_thread.run_sync(_record, gw.store, request_id, score, client)
    if not found:
        raise GatewayError(
            404,
            f"no answered request {request_id!r} from this client in the gateway's log; send the "
            "x-trouter-request-id header of an answer",
            param="request_id",
            code="request_not_found",
        )
    return JSONResponse({"object": "feedback", "request_id": request_id, "score": score})


def _checked(body: dict[str, Any]) -> tuple[str, float]:
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not request_id.strip() or len(request_id) > 64:
        raise bad_request(
            "request_id must be the x-trouter-request-id header of an answer", param="request_id"
        )
    score = body.get("score")
    if isinstance(score, bool):
        score = float(score)
    if not isinstance(score, int | float) or not (0.0 <= score <= 1.0) or math.isnan(score):
        raise bad_request(
            f"score must be a number in [0, 1] (or true / false), not {score!r}", param="score"
        )
    return request_id, float(score)


def _record(store: Store, request_id: str, score: float, client: str) -> bool:
    """Store the score if `client` has an answered request `request_id`; False if not."""
    with store.session() as session:
        answered = session.scalar(
            select(DecisionLog.id)
            .where(
                DecisionLog.request_id == request_id,
                DecisionLog.status == "ok",
                DecisionLog.client == client,
            )
            .limit(1)
        )
        if answered is None:
            return False
        session.add(Feedback(request_id=request_id, score=score, client=client))
        session.commit()
    return True


def feedback_dataset(
    store: Store, models: tuple[str, ...], *, after: int = 0, since: datetime | None = None
) -> tuple[RoutingDataset, int]:
    """(the scored requests with feedback ids above `after` as a dataset over `models`, the
    highest feedback id read). Raises `DataError` when there is nothing to learn from."""
    from trouter.data.dataset import RoutingDataset

    query = (
        select(
            Feedback.id,
            Feedback.request_id,
            Feedback.score,
            DecisionLog.query,
            DecisionLog.final_model,
        )
        .join(DecisionLog, DecisionLog.request_id == Feedback.request_id)
        .where(Feedback.id.in_(Feedback.latest(after, since)), DecisionLog.status == "ok")
        .order_by(Feedback.id)
    )
    rows = []
    if store.has_table(Feedback.__tablename__) and store.has_table(DecisionLog.__tablename__):
        with store.session() as session:
            rows = list(session.execute(query).all())
    if not rows:
        raise DataError(
            "no new feedback in the gateway's store"
            + (f" after feedback id {after}" if after else "")
            + "; clients send it with POST /v1/feedback"
        )
    frame = pd.DataFrame(rows, columns=["id", "query_id", "score", "query", "model"])
    logged, known = frame["query"] != "", frame["model"].isin(models)
    usable = frame[logged & known]
    if usable.empty and not logged.any():
        raise DataError(
            f"{len(frame)} scored requests, but none has a logged query text (was the gateway "
            "run with query logging off?)"
        )
    if usable.empty:
        others = sorted(set(frame.loc[logged, "model"]))
        raise DataError(
            f"{len(frame)} scored requests, but their answers came from "
            f"{', '.join(others[:4])}{', ...' if len(others) > 4 else ''}, none of them in this "
            f"router's pool ({', '.join(models[:4])}{', ...' if len(models) > 4 else ''}); adapt "
            "the router that served them"
        )
    data = RoutingDataset(
        usable[["query_id", "query", "model", "score"]].reset_index(drop=True),
        name="gateway feedback",
        models=tuple(m for m in models if m in set(usable["model"])),
    )
    return data, int(np.max(frame["id"]))
