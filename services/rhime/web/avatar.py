"""The profile picture's presigned upload, as the user API defines it: `PUT
/api/users/{id}/image` `{"contentType"}` grants `{"url", "fields", "key", ...}`; the bytes are
POSTed to `url` as a form of those fields and the file; `POST /api/users/{id}/image/confirm`
`{"key"}` makes it the profile image. The picture never passes through the user service."""

from __future__ import annotations

from typing import Any

import aiohttp

from rhime.web import gateway

TYPES = ("image/jpeg", "image/png", "image/webp")


class Rejected(Exception):
    """The file cannot be a profile picture; the message says why."""


async def upload(api: gateway.Gateway, *, user_id: str, data: bytes, max_bytes: int) -> None:
    if not data:
        raise Rejected("Choose an image file.")
    if len(data) > max_bytes:
        raise Rejected(f"The image is larger than {max_bytes // 1_000_000} MB.")
    # The bytes decide, not the name or the type the browser guessed from it.
    content_type = sniff(data) or ""
    if content_type not in TYPES:
        raise Rejected("Use a JPEG, PNG or WebP image.")
    try:
        grant = await api.put(f"/api/users/{user_id}/image", {"contentType": content_type})
    except gateway.ApiFailure as failure:
        if failure.status == 400:
            raise Rejected(" ".join(failure.messages)) from None
        raise
    url, fields, key = _grant(grant)
    form = aiohttp.FormData(fields)
    form.add_field("file", data, content_type=content_type, filename="image")
    try:
        async with api.http.post(
            url, data=form, timeout=aiohttp.ClientTimeout(total=30)
        ) as response:
            if 400 <= response.status < 500:
                # the upload's policy (size, type) refused it
                raise Rejected(f"Use a JPEG, PNG or WebP image up to {max_bytes // 1_000_000} MB.")
            if response.status >= 300:
                raise gateway.ApiFailure(502, [{"msg": "The image store refused the upload."}])
    except (aiohttp.ClientError, OSError, TimeoutError):
        raise gateway.ApiFailure(502, [{"msg": "The image store is unavailable."}]) from None
    try:
        await api.post(f"/api/users/{user_id}/image/confirm", {"key": key})
    except gateway.ApiFailure as failure:
        if failure.status == 400:
            raise Rejected(" ".join(failure.messages)) from None
        raise


def sniff(data: bytes) -> str | None:
    """The image type from the file's first bytes, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _grant(body: Any) -> tuple[str, dict[str, str], str]:
    """(url, form fields, key) from the presign answer."""
    if not isinstance(body, dict):
        raise gateway.ApiFailure(502, [{"msg": "The upload could not be prepared."}])
    url, fields, key = body.get("url"), body.get("fields"), body.get("key")
    if (
        not isinstance(url, str)
        or not url
        or not isinstance(fields, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())
        or not isinstance(key, str)
        or not key
    ):
        raise gateway.ApiFailure(502, [{"msg": "The upload could not be prepared."}])
    return url, fields, key
