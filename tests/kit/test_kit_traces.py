"""Traces: off without an endpoint (nothing made, nothing sent), and on, one trace from a
request through a call, a relayed outbox event and its consumer, exported by OTLP/HTTP to a
real receiver."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from opentelemetry import trace

from rhime import events
from rhime.gateway import app as gateway_app
from rhime.kit import app as kit_app
from rhime.kit import bus, calls, client_address, logs, outbox, traces
from rhime.runtime import otlpsink
from tests.support import SECRET, eventually

RID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[otlpsink.Sink]:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # export within the test
    with otlpsink.Sink() as running:
        yield running


@pytest.fixture(autouse=True)
def no_endpoint_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RHIME_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)


def stale(n: int) -> events.UserCreated:
    """An event staged long enough ago for the relay to publish it at once."""
    event = events.UserCreated(id=f"user.created:t{n}", user_id=f"t{n}", user_name=f"t{n}")
    return event.model_copy(update={"occurred_at": events.now().replace(year=2020)})


def callee(settings: Any, seen: list[dict[str, str]], handled: list[str]) -> Any:
    router = APIRouter()

    @router.get("/echo/{thing}")
    async def echo(thing: str, request: Request) -> dict[str, str]:
        seen.append(dict(request.headers))
        return {"thing": thing}

    async def handler(event: events.UserCreated) -> None:
        handled.append(event.user_id)

    def subscriptions(kit: kit_app.Kit) -> list[bus.Subscription[Any]]:
        return [bus.Subscription(event=events.UserCreated, handler=handler)]

    return kit_app.create_app(
        settings, title="callee", routers=[router], subscriptions=subscriptions, redis=False
    )


def caller(settings: Any) -> Any:
    """`GET /work/{n}`: calls the callee, then writes a document with an event staged and
    leaves its publishing to the outbox relay (as after a crash)."""
    router = APIRouter()

    @router.get("/work/{n}")
    async def work(n: int, kit: kit_app.KitDep) -> dict[str, Any]:
        echoed = await calls.call(kit, "callee", "GET", f"/echo/{n}")
        await kit.database["things"].insert_one({"_id": n, outbox.FIELD: outbox.staged(stale(n))})
        return echoed  # type: ignore[no-any-return]

    return kit_app.create_app(
        settings,
        title="caller",
        routers=[router],
        database="traces",
        outboxes=["things"],
        redis=False,
    )


async def start_pair(
    make_settings: Callable[..., Any], serve: Any, **tracing: str
) -> tuple[Any, Any, list[dict[str, str]], list[str]]:
    seen: list[dict[str, str]] = []
    handled: list[str] = []
    served_callee = await serve(callee(make_settings(component="callee", **tracing), seen, handled))
    served_caller = await serve(
        caller(
            make_settings(component="caller", service_urls={"callee": served_callee.url}, **tracing)
        )
    )
    return served_caller, served_callee, seen, handled


async def test_without_an_endpoint_no_provider_is_made_and_no_header_is_sent(
    make_settings: Callable[..., Any], serve: Any
) -> None:
    served_caller, served_callee, seen, handled = await start_pair(make_settings, serve)
    assert served_caller.app.state.kit.tracing is None
    assert served_callee.app.state.kit.tracing is None
    # nobody installed a global provider either
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)

    async with httpx.AsyncClient(base_url=served_caller.url) as client:
        r = await client.get("/work/1", headers={"x-request-id": RID})
    assert r.status_code == 200, r.text
    assert "traceparent" not in seen[0]
    assert seen[0]["x-request-id"] == RID

    async def relayed() -> None:
        assert handled == ["t1"]

    await eventually(relayed)
    # a staged entry keeps the request id, and no trace context
    token = logs.request_id.set(RID)
    try:
        entry = outbox.staged(stale(2))[0]
    finally:
        logs.request_id.reset(token)
    assert set(entry) == {"id", "subject", "data", outbox.REQUEST_ID}
    # the event went out without one: read it back from the stream
    kit: kit_app.Kit = served_caller.app.state.kit
    js = kit.require_bus().js
    psub = await js.pull_subscribe(kit.settings.subject("user.created"), durable="peek")
    [msg] = await psub.fetch(1, timeout=5)
    assert msg.headers is not None
    assert "traceparent" not in msg.headers
    assert msg.headers["x-request-id"] == RID


def test_without_an_endpoint_the_sdk_is_not_even_loaded() -> None:
    """A component built without an endpoint imports neither the SDK's tracing nor the
    exporter (redis-py loads the SDK's metrics package for its own, idle, observability)."""
    program = (
        "import sys\n"
        "from rhime.feed import app\n"
        "app.create(app.Settings(internal_secret='x' * 40, component='feed'))\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.')))\n"
    )
    env = {k: v for k, v in os.environ.items() if "OTLP" not in k}
    out = subprocess.run(
        [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "opentelemetry.sdk.trace" not in out
    assert "opentelemetry.exporter" not in out
    assert "opentelemetry.context" in out  # the API is there, idle


async def test_one_trace_from_a_request_through_a_call_and_a_relayed_event(
    make_settings: Callable[..., Any], serve: Any, sink: otlpsink.Sink
) -> None:
    served_caller, _, seen, handled = await start_pair(make_settings, serve, otlp_endpoint=sink.url)
    assert served_caller.app.state.kit.tracing is not None
    async with httpx.AsyncClient(base_url=served_caller.url) as client:
        assert (await client.get("/healthz")).status_code == 200
        r = await client.get("/work/7", headers={"x-request-id": RID})
    assert r.status_code == 200, r.text
    assert seen[0]["traceparent"]

    async def exported() -> dict[tuple[str, str], otlpsink.Span]:
        found = {(s.service, s.name): s for s in sink.spans()}
        # each component exports on its own schedule
        assert ("callee", "process user.created") in found, sorted(found)
        assert ("caller", "publish user.created") in found, sorted(found)
        return found

    found = await eventually(exported)
    request = found[("caller", "GET /work/{n}")]
    call = found[("caller", "GET callee")]
    served = found[("callee", "GET /echo/{thing}")]
    publish = found[("caller", "publish user.created")]
    process = found[("callee", "process user.created")]
    assert (request.parent_id, request.kind) == ("", "server")
    assert (call.parent_id, call.kind) == (request.span_id, "client")
    assert (served.parent_id, served.kind) == (call.span_id, "server")
    # the relay published later, from its own task: the stored context kept the trace
    assert (publish.parent_id, publish.kind) == (request.span_id, "producer")
    assert (process.parent_id, process.kind) == (publish.span_id, "consumer")
    for span in (request, call, served, publish, process):
        assert span.trace_id == request.trace_id
        assert span.attributes[traces.REQUEST_ID] == RID
    assert handled == ["t7"]
    # bounded names: the id in the path is an attribute, not part of a name
    assert not [s.name for s in sink.spans() if "7" in s.name]
    # probes are not traced (exported first, they would be here by now)
    assert not [s.name for s in sink.spans() if "/healthz" in s.name]


async def test_the_gateway_continues_a_trace_only_for_a_component(
    make_settings: Callable[..., Any], serve: Any, sink: otlpsink.Sink
) -> None:
    """A `traceparent` from the internet is dropped (a new trace starts); one from a component
    that signed the client's address (the web pages) is continued."""
    upstream = FastAPI()

    @upstream.get("/api/auth/echo")
    async def echo(request: Request) -> dict[str, str]:
        return {"traceparent": request.headers.get("traceparent", "")}

    auth = await serve(upstream, wait_ready=False)
    gateway = await serve(
        gateway_app.create(
            make_settings(
                gateway_app.Settings,
                component="gateway",
                access_token_secret="test-access-token-secret-0123456789-abcdefgh",
                upstreams={"auth": auth.url},
                service_url_template="http://127.0.0.1:1",
                otlp_endpoint=sink.url,
            )
        )
    )
    theirs = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    signed = client_address.encode("203.0.113.9", secret=SECRET, service="web")
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        outside = await client.get("/api/auth/echo", headers={"traceparent": theirs})
        web = await client.get(
            "/api/auth/echo", headers={"traceparent": theirs, client_address.HEADER: signed}
        )
    assert outside.status_code == web.status_code == 200
    started = outside.json()["traceparent"].split("-")
    continued = web.json()["traceparent"].split("-")
    assert started[1] not in ("", "ab" * 16)  # a new trace, the gateway's span its parent
    assert continued[1] == "ab" * 16
    assert continued[2] != "cd" * 8  # the gateway's own span in between


def test_the_endpoint_is_a_collector_base_url_as_otel_reads_it() -> None:
    assert traces.exporter_url("http://collector:4318") == "http://collector:4318/v1/traces"
    assert traces.exporter_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert traces.exporter_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"
