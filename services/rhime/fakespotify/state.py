"""What the fake remembers: codes, tokens, grants, injected faults and request counts."""

import dataclasses


@dataclasses.dataclass(slots=True)
class Code:
    user: int
    redirect_uri: str
    scope: str
    expires_at: float


@dataclasses.dataclass(slots=True)
class Access:
    user: int
    scope: str
    expires_at: float


@dataclasses.dataclass(slots=True)
class Grant:
    user: int
    scope: str
    refreshes: int = 0


@dataclasses.dataclass(slots=True)
class Fault:
    status: int
    remaining: int
    retry_after: int | None
    path_prefix: str
    delay: float = 0.0


@dataclasses.dataclass(slots=True)
class FakeState:
    """Everything the fake remembers; one per app instance."""

    next_user: int = 0
    codes: dict[str, Code] = dataclasses.field(default_factory=dict)
    access: dict[str, Access] = dataclasses.field(default_factory=dict)
    refresh: dict[str, Grant] = dataclasses.field(default_factory=dict)
    faults: list[Fault] = dataclasses.field(default_factory=list)
    v1_requests: int = 0
    token_requests: int = 0
