"""Traces across the platform: sign up, post, like and read the home page through the
gateway, every component exporting by OTLP/HTTP to a real receiver; each request is one
trace from the gateway through the services it reached, over HTTP and gRPC, to the event
consumers its events woke."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from rhime.auth import app as auth_app
from rhime.gateway import app as gateway_app
from rhime.kit import traces
from rhime.kit.settings import Settings
from rhime.runtime import otlpsink
from tests.content.content_helpers import TRACK, connect_spotify
from tests.content.test_feed_timelines import Platform
from tests.support import eventually

ACCESS_SECRET = "test-access-token-secret-0123456789-abcdefgh"


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[otlpsink.Sink]:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # export within the test
    with otlpsink.Sink() as running:
        yield running


@pytest.fixture
async def traced(
    make_settings: Callable[..., Any],
    serve: Any,
    s3_url: str,
    spotify_url: str,
    sink: otlpsink.Sink,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Platform, Any]]:
    """The feed test's platform plus auth and the gateway, every component traced."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")

    def settings(cls: type[Settings] = Settings, **overrides: Any) -> Any:
        return make_settings(cls, otlp_endpoint=sink.url, **overrides)

    platform = await Platform(settings, serve, s3_url, spotify_url).start()
    try:
        auth = await serve(
            auth_app.create(
                settings(auth_app.Settings, component="auth", access_token_secret=ACCESS_SECRET)
            )
        )
        upstreams = {
            "auth": auth.url,
            "post": platform.post.url,
            "like": platform.like.url,
            "feed": platform.feed.url,
            "spotify": platform.spotify.url,
            "user-graph": platform.graph.url,
        }
        gateway = await serve(
            gateway_app.create(
                settings(
                    gateway_app.Settings,
                    component="gateway",
                    access_token_secret=ACCESS_SECRET,
                    upstreams=upstreams,
                    service_url_template="http://127.0.0.1:1",
                )
            )
        )
        yield platform, gateway
    finally:
        await platform.stop()


def trace_of(sink: otlpsink.Sink, request_id: str) -> list[otlpsink.Span]:
    """The spans of the trace the gateway started for the request `request_id`."""
    spans = sink.spans()
    roots = [
        s
        for s in spans
        if (s.service, s.kind) == ("gateway", "server")
        and s.attributes.get(traces.REQUEST_ID) == request_id
    ]
    assert len(roots) == 1  # (not exported yet: none)
    root = roots[0]
    assert root.parent_id == ""
    return [s for s in spans if s.trace_id == root.trace_id]


def connected(spans: list[otlpsink.Span]) -> None:
    """Every span but the root has its parent in the trace."""
    ids = {s.span_id for s in spans}
    orphans = [(s.service, s.name) for s in spans if s.parent_id and s.parent_id not in ids]
    assert not orphans


async def test_a_journey_is_traced_from_the_gateway_to_the_consumers(
    traced: tuple[Platform, Any], sink: otlpsink.Sink
) -> None:
    platform, gateway = traced
    async with httpx.AsyncClient(base_url=gateway.url, timeout=20) as client:
        body = {"userName": "tracy", "email": "tracy@example.com", "password": "s3cret!pw"}
        r = await client.post("/api/auth/signup", json=body)
        assert r.status_code == 201, r.text
        user_id = r.json()["userId"]
        r = await client.post("/api/auth/signin", json=body)
        assert r.status_code == 200, r.text
        bearer = {"authorization": f"Bearer {r.json()['accessToken']}"}
        await connect_spotify(platform.spotify.url, user_id, listener=0)

        r = await client.post(
            "/api/posts", json={"trackId": TRACK["id"], "caption": "traced"}, headers=bearer
        )
        assert r.status_code == 201, r.text
        post_rid = r.headers["x-request-id"]
        post_id = r.json()["post"]["postId"]
        r = await client.put(f"/api/likes/{post_id}", headers=bearer)
        assert r.status_code == 200, r.text
        like_rid = r.headers["x-request-id"]

        async def on_home() -> str:
            r = await client.get("/api/feed", headers=bearer)
            assert r.status_code == 200, r.text
            assert [p["postId"] for p in r.json()["posts"]] == [post_id]
            return r.headers["x-request-id"]

        home_rid = await eventually(on_home)

    async def exported() -> dict[str, list[otlpsink.Span]]:
        found = {rid: trace_of(sink, rid) for rid in (post_rid, like_rid, home_rid)}
        names = {rid: {(s.service, s.name) for s in spans} for rid, spans in found.items()}
        # the post: gateway (asking spotify whether the poster is connected) → post → its
        # event → feed's consumer → user-graph-view over gRPC for the author's followers
        assert {
            ("gateway", "POST /api/posts"),
            ("gateway", "GET spotify"),
            ("spotify", "GET /internal/connected/{user_id}"),
            ("post", "POST /api/posts"),
            ("post", "publish post.created"),
            ("feed", "process post.created"),
            ("feed", "/rhime.graphview.v1.UserGraphView/Followers"),
            ("user-graph-view", "/rhime.graphview.v1.UserGraphView/Followers"),
        } <= names[post_rid], sorted(names[post_rid])
        assert {
            ("gateway", "PUT /api/likes"),
            ("like", "PUT /api/likes/{item_id}"),
            ("like", "publish like.toggled"),
            ("like-updater", "process like.toggled"),
        } <= names[like_rid], sorted(names[like_rid])
        assert {("gateway", "GET /api/feed"), ("feed", "GET /api/feed")} <= names[home_rid]
        return found

    found = await eventually(exported)
    for rid, spans in found.items():
        connected(spans)
        # the request id is on every span the request made, wherever it ran
        assert {s.attributes.get(traces.REQUEST_ID) for s in spans} == {rid}
    post_trace = {(s.service, s.name): s for s in found[post_rid]}
    consumer = post_trace[("feed", "process post.created")]
    producer = post_trace[("post", "publish post.created")]
    assert consumer.parent_id == producer.span_id
    # the gRPC call: the consumer's client span, the server's span its child
    grpc_client = post_trace[("feed", "/rhime.graphview.v1.UserGraphView/Followers")]
    grpc_server = post_trace[("user-graph-view", "/rhime.graphview.v1.UserGraphView/Followers")]
    assert (grpc_client.kind, grpc_server.kind) == ("client", "server")
    assert grpc_client.parent_id == consumer.span_id
    assert grpc_server.parent_id == grpc_client.span_id
    # span names are bounded: no id of this journey in any of them
    assert not [s.name for s in sink.spans() if user_id in s.name or post_id in s.name]
