"""Each component's app opens the stores its catalogue entry declares, and no other: the
operator hands out credentials and network access by the entry."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from rhime import catalogue

REQUIRED = {
    "internal_secret": "i" * 40,
    "access_token_secret": "a" * 40,
    "spotify_client_id": "client",
    "spotify_client_secret": "secret",
    "encryption_key": base64.urlsafe_b64encode(b"k" * 32).decode(),
}
APPS = [c for c in catalogue.COMPONENTS if c.kind in (catalogue.Kind.HTTP, catalogue.Kind.WORKER)]


def _app(component: catalogue.Component) -> Any:
    create, settings_type = component.load()
    settings = settings_type(
        component=component.name,
        **{k: v for k, v in REQUIRED.items() if k in settings_type.model_fields},
    )
    return create(settings)


@pytest.mark.parametrize("component", APPS, ids=lambda c: c.name)
def test_the_app_opens_what_its_entry_declares(component: catalogue.Component) -> None:
    kit = _app(component).state.kit
    settings = kit.settings
    backing = set(component.backing)
    assert kit.uses_nats == (catalogue.Backing.NATS in backing)
    assert kit.uses_redis == (catalogue.Backing.REDIS in backing)
    assert (kit.database_name is not None) == (catalogue.Backing.MONGO in backing)
    if component.database:
        assert kit.database_name == settings.database_name(component.database)


@pytest.mark.parametrize("component", APPS, ids=lambda c: c.name)
def test_the_app_consumes_what_its_entry_declares(component: catalogue.Component) -> None:
    """The entry's `consumes` makes the component's NATS permissions: one it forgot would
    fail only at runtime, one it no longer uses is access it should not have."""
    app = _app(component)
    factory = app.state.subscriptions
    subjects = {s.event.SUBJECT for s in factory(app.state.kit)} if factory else set()
    assert subjects == set(component.consumes)
