"""Each component's app opens the stores its catalogue entry declares, and no other: the
operator hands out credentials and network access by the entry."""

from __future__ import annotations

import base64

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


@pytest.mark.parametrize("component", APPS, ids=lambda c: c.name)
def test_the_app_opens_what_its_entry_declares(component: catalogue.Component) -> None:
    create, settings_type = component.load()
    settings = settings_type(
        component=component.name,
        **{k: v for k, v in REQUIRED.items() if k in settings_type.model_fields},
    )
    kit = create(settings).state.kit
    backing = set(component.backing)
    assert kit.uses_nats == (catalogue.Backing.NATS in backing)
    assert kit.uses_redis == (catalogue.Backing.REDIS in backing)
    assert (kit.database_name is not None) == (catalogue.Backing.MONGO in backing)
    if component.database:
        assert kit.database_name == settings.database_name(component.database)
