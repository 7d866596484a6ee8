"""A client of Rhime's public API, as a person's app would use it (through the gateway only).

Used by `rhime seed` and the end-to-end tests. Each `Session` is one signed-in person with
their own cookie jar.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx


class ApiError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            self.errors = response.json().get("errors", [])
        except ValueError:
            self.errors = [{"msg": response.text[:200]}]
        super().__init__(
            f"{response.request.method} {response.request.url.path} -> {self.status}: {self.errors}"
        )


def _check(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise ApiError(response)
    return response.json() if response.content else None


class Session:
    """One person. `await session.close()` when done."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        # Idle connections are dropped before the server's keep-alive timeout (uvicorn: 5 s):
        # with equal timeouts a request can be sent just as the server closes the connection.
        self.http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, limits=httpx.Limits(keepalive_expiry=2.0)
        )
        self.user_id = ""
        self.user_name = ""

    async def close(self) -> None:
        await self.http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return _check(await self.http.request(method, path, **kwargs))

    async def sign_up(self, *, user_name: str, email: str, password: str) -> dict[str, Any]:
        body = {"userName": user_name, "email": email, "password": password}
        out: dict[str, Any] = await self.request("POST", "/api/auth/signup", json=body)
        return out

    async def sign_in(self, *, login: str, password: str) -> dict[str, Any]:
        out: dict[str, Any] = await self.request(
            "POST", "/api/auth/signin", json={"userName": login, "password": password}
        )
        self.user_id, self.user_name = out["userId"], out["userName"]
        return out

    async def sign_out(self) -> None:
        await self.request("POST", "/api/auth/signout")

    async def connect_spotify(self) -> str:
        """The OAuth round trip a browser makes: our authorize → Spotify's consent page (the
        fake consents at once) → our callback. Returns where the callback sends the user."""
        response = await self.http.get("/api/spotify/authorize")
        if response.status_code != 302:
            raise ApiError(response)
        async with httpx.AsyncClient(timeout=self.http.timeout) as outside:
            consent = await outside.get(response.headers["location"])
        if consent.status_code != 302:
            raise ApiError(consent)
        back = urlsplit(consent.headers["location"])
        callback = await self.http.get(f"{back.path}?{back.query}")
        if callback.status_code != 302:
            raise ApiError(callback)
        return str(callback.headers["location"])

    async def delete_account(self, *, password: str) -> None:
        """Delete this person's account and everything Rhime holds about them."""
        await self.request("DELETE", "/api/auth/me", json={"password": password})

    async def follow(self, user_id: str) -> None:

        await self.request("PUT", f"/api/graph/following/{user_id}")

    async def unfollow(self, user_id: str) -> None:
        await self.request("DELETE", f"/api/graph/following/{user_id}")

    async def block(self, user_id: str) -> None:
        await self.request("PUT", f"/api/graph/blocks/{user_id}")

    async def unblock(self, user_id: str) -> None:
        await self.request("DELETE", f"/api/graph/blocks/{user_id}")

    async def search_tracks(self, query: str, *, limit: int = 5) -> list[dict[str, Any]]:
        out = await self.request("GET", "/api/spotify/search", params={"q": query, "limit": limit})
        tracks: list[dict[str, Any]] = out["tracks"]
        return tracks

    async def top(self, user_id: str, kind: str) -> list[dict[str, Any]]:
        out = await self.request("GET", f"/api/spotify/users/{user_id}/top/{kind}")
        items: list[dict[str, Any]] = out["items"]
        return items

    async def post(self, *, track: dict[str, Any], caption: str = "") -> str:
        body = {"trackId": track["id"], "caption": caption}
        out = await self.request("POST", "/api/posts", json=body)
        return str(out["post"]["postId"])

    async def comment(self, post_id: str, text: str) -> str:
        out = await self.request("POST", f"/api/comments/posts/{post_id}", json={"text": text})
        return str(out["comment"]["commentId"])

    async def like(self, item_id: str) -> bool:
        out = await self.request("PUT", f"/api/likes/{item_id}")
        return bool(out["isLiked"])

    async def unlike(self, item_id: str) -> bool:
        out = await self.request("DELETE", f"/api/likes/{item_id}")
        return bool(out["isLiked"])

    async def home(self, *, before: str | None = None) -> dict[str, Any]:
        params = {"before": before} if before else {}
        out: dict[str, Any] = await self.request("GET", "/api/feed", params=params)
        return out

    async def recommendations(self) -> list[dict[str, Any]]:
        out = await self.request("GET", "/api/recommendations")
        recs: list[dict[str, Any]] = out["recommendations"]
        return recs

    async def dismiss(self, user_id: str) -> None:
        await self.request("POST", f"/api/recommendations/{user_id}/dismiss")
