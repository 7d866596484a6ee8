"""The local platform hands out keys as the operator does: each component only its own."""

from __future__ import annotations

from rhime import catalogue
from rhime.runtime import local

EVERY_KEY = {key for keys in catalogue.SECRET_KEYS.values() for key in keys}


def test_each_local_component_holds_only_the_keys_it_reads(platform: local.Platform) -> None:
    held = {p.component.name: EVERY_KEY & set(p.env) for p in platform.supervisor.processes}
    assert held["web"] == {catalogue.INTERNAL_KEY}
    assert held["gateway"] == {catalogue.ACCESS_TOKEN_KEY, catalogue.INTERNAL_KEY}
    assert catalogue.ENCRYPTION_KEY in held["spotify"]
    for process in platform.supervisor.processes:
        wanted = {k for keys in process.component.secret_keys().values() for k in keys}
        assert held[process.component.name] == wanted, process.component.name
    # and with only those, every component started and serves
    unready = {p.component.name: p.unready() for p in platform.supervisor.processes}
    assert not {name: why for name, why in unready.items() if why}
