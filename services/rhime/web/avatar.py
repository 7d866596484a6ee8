"""The profile picture's presigned upload: ask the API for a URL, PUT the bytes there, then
confirm, so the picture never passes through the user service."""

from __future__ import annotations

from typing import Any

import aiohttp

from rhime.web import gateway

TYPES = ("image/jpeg", "image/png", "image/webp")


class Rejected(Exception):
    """The file cannot be a profile picture; the message says why."""


async def upload(
    api: gateway.Gateway, *, user_id: str, data: bytes, content_type: str, max_bytes: int
) -> None:
    if not data:
        raise Rejected("Choose an image file.")
    if len(data) > max_bytes:
        raise Rejected(f"The image is larger than {max_bytes // 1_000_000} MB.")
    if content_type not in TYPES:
        raise Rejected("Use a JPEG, PNG or WebP image.")
    try:
        grant = await api.post(f"/api/users/{user_id}/image/upload", {"contentType": content_type})
    except gateway.ApiFailure as failure:
        if failure.status == 400:
            raise Rejected(" ".join(failure.messages)) from None
        raise
    url, headers, key = _grant(grant, content_type)
    try:
        async with api.http.put(
            url, data=data, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
        ) as response:
            if response.status >= 300:
                raise gateway.ApiFailure(502, [{"msg": "The image store refused the upload."}])
    except (aiohttp.ClientError, OSError):
        raise gateway.ApiFailure(502, [{"msg": "The image store is unavailable."}]) from None
    await api.post(f"/api/users/{user_id}/image/confirm", {"key": key} if key else None)


def _grant(body: Any, content_type: str) -> tuple[str, dict[str, str], str | None]:
    """(url, headers, key) from the presign answer."""
    if not isinstance(body, dict) or not isinstance(body.get("url") or body.get("uploadUrl"), str):
        raise gateway.ApiFailure(502, [{"msg": "The upload could not be prepared."}])
    headers = {"content-type": content_type}
    extra = body.get("headers")
    if isinstance(extra, dict):
        headers |= {str(k): str(v) for k, v in extra.items()}
    key = body.get("key")
    return str(body.get("url") or body["uploadUrl"]), headers, str(key) if key else None
