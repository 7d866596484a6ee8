"""What the auth routes read and answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from rhime.auth import accounts, rules


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class SignUp(Model):
    user_name: str = Field(examples=["ana.music"])
    email: str = Field(examples=["ana@example.com"])
    password: str = Field(examples=["s3cret!pw"])

    _user_name = field_validator("user_name")(rules.user_name)
    _email = field_validator("email")(rules.email)
    _password = field_validator("password")(rules.password)


class SignIn(Model):
    user_name: str | None = Field(default=None, max_length=254, description="userName or email")
    email: str | None = Field(default=None, max_length=254)
    password: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _login(self) -> SignIn:
        if not (self.user_name or self.email):
            raise ValueError("userName or email is required")
        return self


class PasswordChange(Model):
    current_password: str = Field(min_length=1, max_length=200)
    new_password: str = Field(examples=["n3w!secret"])

    _new_password = field_validator("new_password")(rules.password)


class DeleteAccount(Model):
    password: str = Field(min_length=1, max_length=200, description="The current password.")


class UserOut(Model):
    user_id: str
    user_name: str
    email: str
    spotify: bool = Field(description="Spotify is connected.")


class SignedIn(UserOut):
    access_token: str = Field(description="Also set as the httpOnly `accessToken` cookie.")
    expires_at: int = Field(description="Unix time (seconds) when the token expires.")


class SignedOut(Model):
    signed_out: bool = True


def fields(account: accounts.Account) -> dict[str, Any]:
    return {
        "user_id": account.user_id,
        "user_name": account.user_name,
        "email": account.email,
        "spotify": account.spotify,
    }


class Ids(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] = Field(max_length=100)
