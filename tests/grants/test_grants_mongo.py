"""A component's MongoDB user may read and write only its catalogue `database`: the database
its entrypoint opens must be that one, or in a cluster it fails at runtime, unauthorized.

(Enforcement itself is checked as rendered in tests/operator: the local FerretDB 1.x cannot
give a user roles, see docs/security.md.)"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from rhime import catalogue, grants
from rhime.kit.settings import Settings

# `database="x"` (create_app), `database_name("x")` (a server or job opening it itself), or the
# module's `store.DATABASE`
_OPENED = re.compile(r'database(?:_name\(|=)\s*(?:"([a-z_]+)"|(store\.DATABASE))')
MONGO_USERS = [c for c in catalogue.COMPONENTS if catalogue.Backing.MONGO in c.backing]


@pytest.mark.parametrize("component", MONGO_USERS, ids=lambda c: c.name)
def test_the_entrypoint_opens_only_the_database_the_user_may_use(
    component: catalogue.Component,
) -> None:
    module = importlib.import_module(component.entrypoint.split(":")[0])
    source = Path(str(module.__file__)).read_text()
    opened = {
        literal or module.store.DATABASE
        for literal, store in _OPENED.findall(source)
        if literal or store
    }
    assert opened == {component.database}
    (role,) = grants.mongo_roles(component, namespace="ns")
    assert role == {
        "role": "readWrite",
        "db": Settings(namespace="ns", internal_secret="k" * 64).database_name(
            str(component.database)
        ),
    }


def test_components_without_mongo_get_no_user() -> None:
    users = {u["user"] for u in grants.mongo_users(seed="s", namespace="ns")}
    assert users == {c.name for c in MONGO_USERS}
    assert "gateway" not in users
    assert "web" not in users
