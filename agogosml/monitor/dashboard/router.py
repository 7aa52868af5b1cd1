"""`dashboard_router(view)`: the dashboard's page, its static files and its JSON API.

    GET /                 the page
    GET /static/{name}    its scripts and styles
    GET /api/live         LiveSnapshot
    GET /api/drift        list[VersionDrift]
    GET /api/performance  list[VersionPerformance]
    GET /api/performance/history  PerformanceHistory: per version and window of a range
    GET /api/events       scored events with their inputs, a page at a time (EventsAnswer)
    GET /api/counts       events per time window and model version (CountsAnswer)
    GET /api/firings      the trigger log (FiringsAnswer)

Paths are relative to where the router is included; the page asks for its files and the
API by relative URLs, so it works under any prefix. Bad query parameters answer 422 (wrong
type or out of bounds) or 400 (inconsistent), as {"error": ..., "type": ...} once the app
has `agogosml.web.errors.install_error_handlers`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from agogosml.errors import BadRequestError, NotFoundError
from agogosml.monitor.dashboard import params
from agogosml.monitor.dashboard.assets import CONTENT_SECURITY_POLICY, load_assets
from agogosml.monitor.dashboard.params import (
    MAX_EVENTS_PER_PAGE,
    MAX_FIRINGS,
    MAX_TEXT,
    MAX_TIME_MS,
    TimeRange,
)
from agogosml.monitor.dashboard.shapes import (
    CountsAnswer,
    EventsAnswer,
    FiringsAnswer,
    counts_answer,
    event_json,
    firing_json,
)
from agogosml.monitor.view import MonitorView
from agogosml.web.responses import JsonResponse

TimeMs = Annotated[int, Query(ge=0, le=MAX_TIME_MS, description="ms since the epoch")]
Text = Annotated[str | None, Query(max_length=MAX_TEXT)]

PAGE_HEADERS = {"content-security-policy": CONTENT_SECURITY_POLICY,
                "cache-control": "no-cache", "x-content-type-options": "nosniff"}


def dashboard_router(view: MonitorView) -> APIRouter:
    router = APIRouter()
    assets = load_assets()
    page = assets["index.html"]

    @router.get("/", include_in_schema=False)
    async def dashboard_page() -> Response:
        return Response(page.body, media_type=page.media_type, headers=PAGE_HEADERS)

    @router.get("/static/{name:path}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        asset = assets.get(name)
        if asset is None or name == "index.html":
            raise NotFoundError("no such dashboard file")
        return Response(asset.body, media_type=asset.media_type, headers=PAGE_HEADERS)

    @router.get("/api/live")
    async def live() -> JsonResponse:
        """The pipeline now: rates, latency quantiles, errors, dead letters, predictions."""
        return JsonResponse(view.live())

    @router.get("/api/drift")
    async def drift() -> JsonResponse:
        """Drift per model version and feature, with each feature's reference and live
        shares per bin."""
        return JsonResponse(view.drift())

    @router.get("/api/performance")
    async def performance() -> JsonResponse:
        """Performance per model version from late labels."""
        return JsonResponse(view.performance())

    @router.get("/api/performance/history")
    async def performance_history(
            start: TimeMs, end: TimeMs,
            window: Annotated[int, Query(ge=1, le=MAX_TIME_MS,
                                         description="window length in ms")]) -> JsonResponse:
        """Performance per model version and window of `window` ms (at most 10,000
        windows) over [start, end), from the labelled predictions in the store."""
        time_range = TimeRange.of(start, end)
        params.check_windows(time_range, window)
        try:
            history = await view.performance_history(time_range.start_ms, time_range.end_ms,
                                                     window)
        except ValueError as error:  # a window the store's rollups cannot be cut into
            raise BadRequestError(str(error)) from None
        return JsonResponse(history)

    @router.get("/api/events")
    async def events(start: TimeMs, end: TimeMs, model_version: Text = None,
                     prediction: Text = None,
                     limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PER_PAGE)] = 100,
                     cursor: Text = None) -> JsonResponse:
        """Scored events with event time in [start, end), in time order. `prediction` is a
        JSON value (`"fraud"`, `1`); `cursor` is the previous answer's."""
        time_range = TimeRange.of(start, end)
        page = await view.store.events(
            time_range.start_ms, time_range.end_ms,
            model_version=params.text(model_version, "model_version"),
            prediction=params.prediction(prediction), limit=limit,
            cursor=params.cursor(cursor))
        return JsonResponse(EventsAnswer(events=[event_json(e) for e in page.events],
                                         cursor=page.cursor))

    @router.get("/api/counts")
    async def counts(start: TimeMs, end: TimeMs,
                     window: Annotated[int, Query(ge=1, le=MAX_TIME_MS,
                                                  description="window length in ms")],
                     model_version: Text = None) -> JsonResponse:
        """Events per window of `window` ms (at most 10,000 windows) and model version."""
        time_range = TimeRange.of(start, end)
        params.check_windows(time_range, window)
        version = params.text(model_version, "model_version")
        try:
            rows = await view.store.counts(time_range.start_ms, time_range.end_ms, window,
                                           model_version=version)
        except ValueError as error:  # a window the store's rollups cannot be cut into
            raise BadRequestError(str(error)) from None
        answer: CountsAnswer = counts_answer(start, end, window, rows)
        return JsonResponse(answer)

    @router.get("/api/firings")
    async def firings(start: TimeMs, end: TimeMs, rule: Text = None,
                      limit: Annotated[int, Query(ge=1, le=MAX_FIRINGS)] = MAX_FIRINGS,
                      ) -> JsonResponse:
        """What the trigger rules did in [start, end): rule, action, outcome, evidence."""
        time_range = TimeRange.of(start, end)
        found = await view.store.firings(time_range.start_ms, time_range.end_ms,
                                         rule=params.text(rule, "rule"))
        latest = found[-limit:]
        return JsonResponse(FiringsAnswer(firings=[firing_json(f) for f in latest],
                                          truncated=len(found) > len(latest)))

    return router
