"""Profile images in S3: a presigned PUT for the browser, then a confirm step that checks the
object is there before its URL is stored. boto3 is synchronous, so calls run in threads."""

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


@dataclasses.dataclass
class Store:
    bucket: str
    region: str
    endpoint_url: str | None
    public_endpoint_url: str | None
    expires_seconds: int = 300

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
        return f"{user_id}/{uuid.uuid4().hex}.{CONTENT_TYPES[content_type]}"

    async def upload_url(self, *, key: str, content_type: str) -> str:
        return str(
            await asyncio.to_thread(
                self._public.generate_presigned_url,
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
                ExpiresIn=self.expires_seconds,
            )
        )

    def public_url(self, key: str) -> str:
        if self.public_endpoint_url or self.endpoint_url:
            base = (self.public_endpoint_url or self.endpoint_url or "").rstrip("/")
            return f"{base}/{self.bucket}/{key}"
        return f"https://{self.bucket}.s3.{self.region}.amazonaws.com/{key}"

    async def exists(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)

    async def ensure_bucket(self) -> None:
        """Local runs (moto) start empty; a real deployment's bucket is provisioned."""
        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self.bucket)
        except ClientError:
            extra = (
                {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
                if self.region != "us-east-1"
                else {}
            )
            await asyncio.to_thread(self._client.create_bucket, Bucket=self.bucket, **extra)
            # Profile images are public, as a real deployment's bucket policy makes them.
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{self.bucket}/*",
                    }
                ],
            }
            await asyncio.to_thread(
                self._client.put_bucket_policy, Bucket=self.bucket, Policy=json.dumps(policy)
            )
