"""Wire shapes of the auth domain."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import EmailStr, Field, StringConstraints, field_validator

from beatmachine.core.schemas import CamelModel, RequestModel, Timestamp
from beatmachine.users.schemas import DisplayName

PASSWORD_MIN = 8
PASSWORD_MAX = 128

Password = Annotated[str, StringConstraints(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


def _strong_enough(value: str) -> str:
    if value.strip() == "" or len(set(value)) < 4:
        raise ValueError("is too weak: use at least 4 different characters")
    return value


class RegisterRequest(RequestModel):
    email: EmailStr = Field(max_length=320)
    password: Password
    display_name: DisplayName
    # Strict: "yes", "on" or 1 are not an explicit `true` to the terms.
    accept_terms: bool = Field(strict=True)

    @field_validator("accept_terms")
    @classmethod
    def _terms_accepted(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("must be true")
        return value

    _password = field_validator("password")(_strong_enough)


class LoginRequest(RequestModel):
    email: Annotated[str, StringConstraints(min_length=1, max_length=320)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX)]


class RefreshRequest(RequestModel):
    refresh_token: Token


class ForgotPasswordRequest(RequestModel):
    email: EmailStr = Field(max_length=320)


class ResetPasswordRequest(RequestModel):
    token: Token
    new_password: Password

    _password = field_validator("new_password")(_strong_enough)


class VerifyEmailRequest(RequestModel):
    token: Token


class IdTokenRequest(RequestModel):
    id_token: Token


class AccessTokenRequest(RequestModel):
    access_token: Token


class DeleteAccountRequest(RequestModel):
    password: Annotated[str, StringConstraints(max_length=PASSWORD_MAX)] | None = None


class AuthUser(CamelModel):
    id: str
    email: str
    display_name: str


class RegisteredUser(AuthUser):
    created_at: Timestamp


class AuthResult(CamelModel):
    """`token` is the access JWT; `refreshToken` renews it at `POST /auth/refresh`."""

    user: AuthUser
    token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105
    expires_in: int


class RegisterResult(AuthResult):
    user: RegisteredUser


class OAuthResult(AuthResult):
    is_new_user: bool


class TokenPair(CamelModel):
    token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105
    expires_in: int


class SessionOut(CamelModel):
    id: str
    ip: str | None
    user_agent: str | None
    created_at: Timestamp
    last_used_at: Timestamp
    expires_at: Timestamp
    current: bool


class SessionList(CamelModel):
    sessions: list[SessionOut]


class DeletionScheduled(CamelModel):
    message: str
    deletion_scheduled_at: Timestamp
