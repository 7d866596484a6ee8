"""Sign up, sign in, sign out and connect Spotify."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from rhime.web import gateway, visit
from rhime.web.visit import VisitDep

FORGET_TOKEN = "accessToken=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
# Why the Spotify round trip failed, by the reason the API puts in `?error=`. Only these words
# reach the page: a link with any other text must not put it in front of someone as ours.
CONNECT_FAILURES = {
    "access_denied": "Rhime was not allowed to read your top tracks and artists",
    "exchange_failed": "Spotify refused the authorization",
    "spotify_unavailable": "Spotify is unavailable right now",
    "invalid_state": "the request to Spotify expired or was already used",
    "unknown_state": "the request to Spotify expired or was already used",
    "state_mismatch": "the request to Spotify expired or was already used",
}
CONNECT_FAILED = "something went wrong on the way"


def connect_failure(error: str | None) -> str | None:
    """The sentence to show for a failed connection, never the raw parameter."""
    if not error:
        return None
    return CONNECT_FAILURES.get(error, CONNECT_FAILED)


def router() -> APIRouter:
    r = APIRouter()
    r.get("/signup")(signup_page)
    r.post("/signup")(signup)
    r.get("/signin")(signin_page)
    r.post("/signin")(signin)
    r.post("/signout")(signout)
    r.get("/connect-spotify")(connect_spotify)
    r.post("/settings/spotify/disconnect")(disconnect_spotify)
    return r


async def signup_page(v: VisitDep) -> Response:
    if await v.current() is not None:
        raise visit.Redirect("/")
    return v.page("signup.html", form={}, errors={}, messages=[])


async def signup(
    v: VisitDep,
    user_name: Annotated[str, Form(alias="userName")] = "",
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    form = {"userName": user_name, "email": email}
    try:
        await v.api.post(
            "/api/auth/signup",
            {"userName": user_name, "email": email, "password": password},
        )
        # Signed up means signed in: nobody wants to type the password twice.
        await v.api.post("/api/auth/signin", {"userName": user_name, "password": password})
    except gateway.ApiFailure as failure:
        if failure.status >= 500:
            raise
        return v.page(
            "signup.html",
            status=failure.status,
            form=form,
            errors=failure.field_errors(),
            messages=[e["msg"] for e in failure.errors if not e.get("field")],
        )
    return visit.redirect(v.request, visit.CONNECT_SPOTIFY)


async def signin_page(
    v: VisitDep,
    next_: Annotated[str | None, Query(alias="next")] = None,
    deleted: Annotated[bool, Query()] = False,
) -> Response:
    if await v.current() is not None:
        raise visit.Redirect(visit.safe_next(next_))
    return v.page(
        "signin.html",
        form={},
        errors={},
        messages=[],
        next=visit.safe_next(next_),
        deleted=deleted,
    )


async def signin(
    v: VisitDep,
    login: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    target = visit.safe_next(next_)
    try:
        await v.api.post("/api/auth/signin", {"userName": login, "password": password})
    except gateway.ApiFailure as failure:
        if failure.status >= 500:
            raise
        return v.page(
            "signin.html",
            status=failure.status,
            form={"login": login},
            errors=failure.field_errors(),
            messages=[e["msg"] for e in failure.errors if not e.get("field")],
            next=target,
            deleted=False,
        )
    return visit.redirect(v.request, target)


async def signout(v: VisitDep) -> Response:
    try:
        await v.api.post("/api/auth/signout")
    except gateway.ApiFailure as failure:
        if failure.status != 401:
            raise
    # Whatever the API said, the browser forgets the token.
    forget = () if v.api.set_cookies else (FORGET_TOKEN,)
    return visit.redirect(v.request, visit.SIGNIN, cookies=forget)


async def connect_spotify(
    v: VisitDep,
    error: Annotated[str | None, Query(max_length=200)] = None,
    disconnected: Annotated[bool, Query()] = False,
) -> Response:
    await v.require()
    # Only the gateway's word sends the person home: it knows a (dis)connection at once,
    # while the account's own flag follows by event a moment later.
    signed = visit.signed_identity(v.request)
    if signed is not None and signed.spotify:
        raise visit.Redirect("/")
    return v.page("connect_spotify.html", failure=connect_failure(error), disconnected=disconnected)


async def disconnect_spotify(v: VisitDep) -> Response:
    await v.require()
    # The gateway answers with a cookie that says "not connected"; it reaches the browser
    # with the redirect.
    await v.api.delete("/api/spotify/connection")
    return visit.redirect(v.request, f"{visit.CONNECT_SPOTIFY}?disconnected=1")
