"""Profile: the person, their counts, follow button, tabs of posts and top music, genre mix;
and editing your own profile and picture."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Query
from fastapi.responses import Response

from rhime.web import gateway, music, people, visit
from rhime.web.pages import home
from rhime.web.visit import Visit, VisitDep

UserId = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{24}$")]
Tab = Literal["posts", "artists", "tracks"]
TOP_SHOWN = 20
Handler = Callable[..., Awaitable[Response]]


def router(*, max_upload_bytes: int) -> APIRouter:
    r = APIRouter()
    r.get("/users/{user_id}")(profile_page)
    r.post("/users/{user_id}/follow")(follow)
    r.post("/users/{user_id}/block")(block)
    # the settings page tells the browser the largest picture the image store takes
    r.get("/settings/profile")(_edit_page(max_upload_bytes=max_upload_bytes))
    r.post("/settings/password")(_change_password(max_upload_bytes=max_upload_bytes))
    r.post("/settings/profile")(_edit(max_upload_bytes=max_upload_bytes))
    r.post("/settings/delete-account")(_delete_account(max_upload_bytes=max_upload_bytes))
    r.post("/settings/avatar/delete")(delete_avatar)
    return r


async def profile_page(
    v: VisitDep,
    user_id: UserId,
    tab: Annotated[Tab, Query()] = "posts",
    before: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    viewer = await v.require()
    if v.partial == "tab":
        return v.fragment(
            "_profile_tab.html",
            tab=tab,
            user_id=user_id,
            **await _tab(v.api, user_id, tab, before),
        )
    if v.partial == "feed-page":
        params = {"before": before} if before else None
        page = await v.api.get(f"/api/feed/users/{user_id}", params=params)
        return v.fragment("_feed_page.html", **home.timeline(page))
    own = viewer.user_id == user_id
    person, counts, relation, genres, panel = await gateway.gather(
        people.one(v.api, user_id),
        v.api.get(f"/api/graph/users/{user_id}/counts"),
        _relationship(v.api, user_id, own=own),
        v.api.optional(f"/api/spotify/users/{user_id}/top/genres", default={}),
        _tab(v.api, user_id, tab, before),
    )
    weights = [music.genre(g, i) for i, g in enumerate(music.items(genres, "genres"))]
    return v.page(
        "profile.html",
        person=person,
        own=own,
        counts=counts if isinstance(counts, dict) else {},
        relation=relation,
        genres=weights,
        tab=tab,
        user_id=user_id,
        **panel,
    )


async def follow(v: VisitDep, user_id: UserId, following: Annotated[str, Form()] = "1") -> Response:
    await v.require()
    if following == "1":
        await v.api.put(f"/api/graph/following/{user_id}")
    else:
        await v.api.delete(f"/api/graph/following/{user_id}")
    if not v.partial:
        return visit.redirect(v.request, f"/users/{user_id}")
    counts, relation = await gateway.gather(
        v.api.get(f"/api/graph/users/{user_id}/counts"),
        _relationship(v.api, user_id, own=False),
    )
    return v.fragment("_follow.html", user_id=user_id, counts=counts, relation=relation)


async def block(
    v: VisitDep,
    user_id: UserId,
    blocking: Annotated[str, Form()] = "1",
    back: Annotated[Literal["profile", "settings"], Form()] = "profile",
) -> Response:
    await v.require()
    if blocking == "1":
        await v.api.put(f"/api/graph/blocks/{user_id}")
    else:
        await v.api.delete(f"/api/graph/blocks/{user_id}")
    target = "/settings/profile" if back == "settings" else f"/users/{user_id}"
    return visit.redirect(v.request, target)


def _edit_page(*, max_upload_bytes: int) -> Handler:
    async def edit_page(v: VisitDep, password: Annotated[str, Query()] = "") -> Response:
        viewer = await v.require()
        person, page = await gateway.gather(
            people.one(v.api, viewer.user_id), v.api.get("/api/graph/blocks")
        )
        blocked = await people.many(v.api, page.get("userIds") or [])
        return v.page(
            "profile_edit.html",
            blocked=list(blocked.values()),
            blocked_more=page.get("next") is not None,
            person=person,
            errors={},
            messages=[],
            saved=False,
            password_changed=password == "changed",
            max_upload_bytes=max_upload_bytes,
            delete_error=None,
        )

    return edit_page


def _change_password(*, max_upload_bytes: int) -> Handler:
    async def change_password(
        v: VisitDep,
        current: Annotated[str, Form(alias="currentPassword", max_length=500)] = "",
        new: Annotated[str, Form(alias="newPassword", max_length=500)] = "",
    ) -> Response:
        viewer = await v.require()
        try:
            # The answer's fresh cookie reaches the browser with the redirect: every other
            # session is signed out, this one carries on.
            await v.api.post("/api/auth/password", {"currentPassword": current, "newPassword": new})
        except gateway.ApiFailure as failure:
            return await _edit_again(
                v,
                failure,
                user_id=viewer.user_id,
                max_upload_bytes=max_upload_bytes,
                password_errors=failure.field_errors(),
                password_messages=[e["msg"] for e in failure.errors if not e.get("field")],
            )
        return visit.redirect(v.request, "/settings/profile?password=changed")

    return change_password


def _edit(*, max_upload_bytes: int) -> Handler:
    async def edit(
        v: VisitDep,
        first_name: Annotated[str, Form(alias="firstName", max_length=500)] = "",
        last_name: Annotated[str, Form(alias="lastName", max_length=500)] = "",
        bio: Annotated[str, Form(max_length=5000)] = "",
        age: Annotated[str, Form(max_length=20)] = "",
        gender: Annotated[str, Form(max_length=20)] = "",
    ) -> Response:
        viewer = await v.require()
        change: dict[str, Any] = {
            "firstName": first_name,
            "lastName": last_name,
            "bio": bio,
            "age": parse_age(age),
            "gender": gender,
        }
        try:
            await v.api.patch(f"/api/users/{viewer.user_id}", change)
        except gateway.ApiFailure as failure:
            return await _edit_again(
                v,
                failure,
                user_id=viewer.user_id,
                max_upload_bytes=max_upload_bytes,
                change=change,
                errors=failure.field_errors(),
                messages=[e["msg"] for e in failure.errors if not e.get("field")],
                delete_error=None,
            )
        return visit.redirect(v.request, f"/users/{viewer.user_id}")

    return edit


def _delete_account(*, max_upload_bytes: int) -> Handler:
    async def delete_account(
        v: VisitDep, password: Annotated[str, Form(max_length=500)] = ""
    ) -> Response:
        viewer = await v.require()
        try:
            await v.api.delete("/api/auth/me", {"password": password})
        except gateway.ApiFailure as failure:
            return await _edit_again(
                v,
                failure,
                user_id=viewer.user_id,
                max_upload_bytes=max_upload_bytes,
                delete_error="; ".join(failure.messages) or "The password is incorrect.",
            )
        # the API's answer clears the cookie; it reaches the browser with the redirect
        return visit.redirect(v.request, f"{visit.SIGNIN}?deleted=1")

    return delete_account


async def delete_avatar(v: VisitDep) -> Response:
    viewer = await v.require()
    await v.api.delete(f"/api/users/{viewer.user_id}/image")
    return visit.redirect(v.request, "/settings/profile")


def parse_age(raw: str) -> int | str | None:
    """The age as the API takes it: a number, None to clear it, or the text as typed, so
    the API's own message says what is wrong with it."""
    value = raw.strip()
    if not value:
        return None
    return int(value) if value.isdigit() else value


async def _edit_again(
    v: Visit,
    failure: gateway.ApiFailure,
    *,
    user_id: str,
    max_upload_bytes: int,
    change: Mapping[str, Any] | None = None,
    **shown: Any,
) -> Response:
    """The edit page again with what the API refused (`shown`: the form's errors), over the
    person as stored with the `change` tried on top. A server failure or a lost session is
    not the form's fault: it goes on to the error page."""
    if failure.status >= 500 or failure.status == 401:
        raise failure
    person = await people.one(v.api, user_id)
    context: dict[str, Any] = {"errors": {}, "messages": [], **shown}
    return v.page(
        "profile_edit.html",
        status=failure.status,
        person={**person, **(change or {})},
        saved=False,
        max_upload_bytes=max_upload_bytes,
        **context,
    )


async def _relationship(api: gateway.Gateway, user_id: str, *, own: bool) -> dict[str, Any]:
    if own:
        return {}
    body = await api.get(f"/api/graph/relationship/{user_id}")
    return body if isinstance(body, dict) else {}


async def _tab(api: gateway.Gateway, user_id: str, tab: Tab, before: str | None) -> dict[str, Any]:
    """What the chosen tab shows; the others load when chosen."""
    if tab == "posts":
        params = {"before": before} if before else None
        page = await api.get(f"/api/feed/users/{user_id}", params=params)
        return {**home.timeline(page), "items": []}
    body = await api.optional(f"/api/spotify/users/{user_id}/top/{tab}", default={})
    shape = music.artist if tab == "artists" else music.track
    found = [shape(i) for i in music.items(body, tab) if isinstance(i, dict)][:TOP_SHOWN]
    if tab == "artists" and found:
        found = music.with_pictures(found, await _artist_details(api, found))
    return {"posts": [], "next": None, "items": found}


async def _artist_details(api: gateway.Gateway, found: list[dict[str, Any]]) -> Any:
    """Pictures and links as Spotify has them; the list shows without them if that fails."""
    ids = ",".join(a["id"] for a in found if a["id"])
    try:
        return await api.get("/api/spotify/artists", params={"ids": ids})
    except gateway.ApiFailure as failure:
        if failure.status == 401:
            raise
        return {}
