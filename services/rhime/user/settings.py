"""Settings of the user component."""

from __future__ import annotations

from pydantic import Field

from rhime.kit.settings import Settings as KitSettings


class Settings(KitSettings):
    s3_bucket: str = Field(
        default="rhime-profile-images", description="S3 bucket of profile images (public read)"
    )
    s3_region: str = Field(default="eu-west-1", description="AWS region of the bucket")
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint instead of AWS (e.g. moto locally); when set, the "
        "bucket is created at startup if missing",
    )
    s3_public_endpoint_url: str | None = Field(
        default=None,
        description="endpoint as browsers reach it, for upload URLs and image links (default: "
        "the endpoint above)",
    )
    upload_expires_seconds: int = Field(
        default=120,
        ge=30,
        le=600,
        description="seconds a presigned profile-image upload stays valid",
    )
    max_image_bytes: int = Field(
        default=5_000_000,
        ge=1,
        description="largest profile image the presigned upload accepts (the web page's "
        "limit is the same)",
    )
