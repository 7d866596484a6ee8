"""Traces (OpenTelemetry), exported by OTLP/HTTP when an endpoint is configured.

Off (no endpoint), a component has no `Tracing` at all: no tracer provider is made and no
header is read or written, so every call site guards with `if tracing is not None` or uses
the helpers below, which do nothing for `None`.

On, each component has its own tracer provider (not the global one: the tests serve several
components in one process, each must report as itself) and W3C `traceparent` headers carry
the context over HTTP, gRPC metadata and NATS message headers. Span names are bounded (a
route template, an event subject, a gRPC method); ids go in attributes, never in names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from rhime.kit import logs

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from rhime.kit.settings import Settings

__all__ = [
    "OFF",
    "REQUEST_ID",
    "TRACEPARENT",
    "TRACESTATE",
    "Context",
    "Span",
    "SpanKind",
    "Status",
    "StatusCode",
    "Tracing",
    "create",
    "current",
    "extract",
    "inject",
    "outgoing",
    "set_status",
]

REQUEST_ID = "rhime.request_id"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_PROPAGATOR = TraceContextTextMapPropagator()
# What a call site enters when tracing is off: one shared object, no work.
OFF: contextlib.AbstractContextManager[None] = contextlib.nullcontext()


def exporter_url(endpoint: str) -> str:
    """OTLP/HTTP's traces URL from a collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT
    is read by the SDK (`http://collector:4318` → `.../v1/traces`); a URL already ending in
    the path is taken as it is."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


class Tracing:
    """A component's tracer and how its context crosses boundaries."""

    def __init__(self, provider: TracerProvider, component: str) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("rhime.kit")
        self.component = component

    def span(
        self,
        name: str,
        *,
        kind: SpanKind,
        parent: Context | None = None,
        attributes: Mapping[str, str] | None = None,
        links: Sequence[Context] = (),
    ) -> contextlib.AbstractContextManager[Span]:
        """A span made current for the block, carrying the request id (the current one unless
        `attributes` has it); an exception marks it as an error."""
        attrs = dict(attributes or {})
        rid = logs.request_id.get()
        if rid:
            attrs.setdefault(REQUEST_ID, rid)
        return self.tracer.start_as_current_span(
            name,
            context=parent,
            kind=kind,
            attributes=attrs,
            links=[Link(trace.get_current_span(c).get_span_context()) for c in links],
            record_exception=True,
        )

    def batch(
        self,
        name: str,
        carriers: Sequence[Mapping[str, str] | None],
        *,
        attributes: Mapping[str, str],
    ) -> contextlib.AbstractContextManager[Span]:
        """A consumer span over a batch of messages: the child of the one message's trace
        when the batch is one, else a new trace linked to (at most 128 of) theirs."""
        contexts = [c for c in (extract(carrier) for carrier in carriers) if c is not None]
        if len(contexts) == 1:
            return self.span(
                name, kind=SpanKind.CONSUMER, parent=contexts[0], attributes=attributes
            )
        return self.span(
            name,
            kind=SpanKind.CONSUMER,
            parent=Context(),  # not whatever happens to be current
            attributes=attributes,
            links=contexts[:128],
        )

    def start(
        self,
        name: str,
        *,
        kind: SpanKind,
        parent: Context | None,
        attributes: Mapping[str, str],
    ) -> Span:
        """A span the caller ends, not made current: for a block that yields (a streaming
        handler), where a current context would be set in one step and reset in another."""
        return self.tracer.start_span(name, context=parent, kind=kind, attributes=attributes)

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        self.provider.shutdown()


def create(settings: Settings) -> Tracing | None:
    """The component's tracing from its settings, or None when no OTLP endpoint is set."""
    if not settings.otlp_endpoint:
        return None
    # only imported when on: a component without traces loads none of the SDK's tracing
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    exporter = OTLPSpanExporter(endpoint=exporter_url(settings.otlp_endpoint), timeout=5)
    component = settings.component or "rhime"
    resource = Resource.create({"service.name": component, "service.namespace": settings.namespace})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider, component)


def extract(carrier: Mapping[str, str] | None) -> Context | None:
    """The remote parent in `carrier` (headers), if it holds one."""
    if not carrier or TRACEPARENT not in carrier:
        return None
    return _PROPAGATOR.extract(carrier)


def inject(carrier: MutableMapping[str, str], span: Span | None = None) -> None:
    """Write the context of `span` (default: the current span) into `carrier` (headers)."""
    _PROPAGATOR.inject(carrier, context=None if span is None else trace.set_span_in_context(span))


def current() -> dict[str, str]:
    """The current span's context as headers, or {} outside any span (tracing off): what
    the outbox stores with a staged event, so a later publish continues the same trace."""
    if not trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


@contextlib.contextmanager
def _outgoing(
    tracing: Tracing, name: str, headers: MutableMapping[str, str], attributes: Mapping[str, str]
) -> Iterator[None]:
    with tracing.span(name, kind=SpanKind.CLIENT, attributes=attributes):
        _PROPAGATOR.inject(headers)
        yield


def outgoing(
    tracing: Tracing | None,
    name: str,
    headers: MutableMapping[str, str],
    attributes: Mapping[str, str] | None = None,
) -> contextlib.AbstractContextManager[None]:
    """A client span around a call, its context injected into `headers`; nothing when off."""
    if tracing is None:
        return OFF
    return _outgoing(tracing, name, headers, attributes or {})


def set_status(span: Span, status: int) -> None:
    """HTTP status on a span; a 5xx marks it as an error."""
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
