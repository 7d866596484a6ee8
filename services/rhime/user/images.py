"""Profile images in S3: a presigned POST for the browser into the pending prefix, then a
confirm step that checks the object and moves it to its public key before its URL is stored.
The POST policy bounds the size and fixes the content type; unconfirmed uploads expire by a
lifecycle rule on the pending prefix. boto3 is synchronous, so calls run in threads."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

CONTENT_TYPES = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp"}
# uploads land here until confirmed; nothing here is public, and it is emptied after a day
PENDING = "pending/"
PENDING_DAYS = 1


@dataclasses.dataclass(frozen=True)
class Stored:
    size: int
    content_type: str


@dataclasses.dataclass
class Store:
    bucket: str
    region: str
    endpoint_url: str | None
    public_endpoint_url: str | None
    max_bytes: int
    expires_seconds: int = 120

    def __post_init__(self) -> None:
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
        self._client: Any = boto3.client(
            "s3", region_name=self.region, endpoint_url=self.endpoint_url, config=config
        )
        self._public: Any = boto3.client(
            "s3",
            region_name=self.region,
            endpoint_url=self.public_endpoint_url or self.endpoint_url,
            config=config,
        )

    def new_key(self, user_id: str, content_type: str) -> str:
        return f"{PENDING}{user_id}/{uuid.uuid4().hex}.{CONTENT_TYPES[content_type]}"

    async def upload_form(self, *, key: str, content_type: str) -> tuple[str, dict[str, str]]:
        """URL and form fields of a presigned POST: S3 refuses a body over `max_bytes` or of
        another content type, which a presigned PUT cannot express."""
        grant = await asyncio.to_thread(
            self._public.generate_presigned_post,
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                {"Content-Type": content_type},
                ["content-length-range", 1, self.max_bytes],
            ],
            ExpiresIn=self.expires_seconds,
        )
        return str(grant["url"]), {str(k): str(v) for k, v in grant["fields"].items()}

    def public_url(self, key: str) -> str:
        if self.public_endpoint_url or self.endpoint_url:
            base = (self.public_endpoint_url or self.endpoint_url or "").rstrip("/")
            return f"{base}/{self.bucket}/{key}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{key}"

    async def stat(self, key: str) -> Stored | None:
        """Size and content type of an object, or None when there is none."""
        try:
            head = await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return Stored(size=int(head["ContentLength"]), content_type=str(head["ContentType"]))

    async def move(self, *, source: str, target: str) -> None:
        await asyncio.to_thread(
            self._client.copy_object,
            Bucket=self.bucket,
            Key=target,
            CopySource={"Bucket": self.bucket, "Key": source},
        )
        await self.delete(source)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)

    async def delete_all(self, user_id: str) -> int:
        """Every object of the user, confirmed or pending; returns how many were deleted."""
        deleted = 0
        for prefix in (f"{user_id}/", f"{PENDING}{user_id}/"):
            while True:
                listed = await asyncio.to_thread(
                    self._client.list_objects_v2, Bucket=self.bucket, Prefix=prefix, MaxKeys=1000
                )
                keys = [{"Key": o["Key"]} for o in listed.get("Contents", [])]
                if not keys:
                    break
                await asyncio.to_thread(
                    self._client.delete_objects, Bucket=self.bucket, Delete={"Objects": keys}
                )
                deleted += len(keys)
        return deleted

    async def ensure_bucket(self) -> None:
        """Local runs (moto) start empty; a real deployment's bucket is provisioned with the
        same policy and lifecycle rule."""
        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self.bucket)
        except ClientError:
            extra = (
                {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
                if self.region != "us-east-1"
                else {}
            )
            await asyncio.to_thread(self._client.create_bucket, Bucket=self.bucket, **extra)
            # Confirmed profile images are public, as a real deployment's bucket policy makes
            # them; pending uploads are not, so an unconfirmed upload serves nobody.
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "NotResource": f"arn:aws:s3:::{self.bucket}/{PENDING}*",
                    }
                ],
            }
            await asyncio.to_thread(
                self._client.put_bucket_policy, Bucket=self.bucket, Policy=json.dumps(policy)
            )
        await asyncio.to_thread(
            self._client.put_bucket_lifecycle_configuration,
            Bucket=self.bucket,
            LifecycleConfiguration=LIFECYCLE,
        )


# Unconfirmed uploads are deleted by S3 itself; a real deployment's bucket needs this rule.
LIFECYCLE = {
    "Rules": [
        {
            "ID": "expire-unconfirmed-profile-images",
            "Filter": {"Prefix": PENDING},
            "Status": "Enabled",
            "Expiration": {"Days": PENDING_DAYS},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": PENDING_DAYS},
        }
    ]
}
