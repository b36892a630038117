"""HTTP routes of the auth domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from beatmachine.auth import service
from beatmachine.auth.dependencies import ClientInfo, CurrentAuth, CurrentUser
from beatmachine.auth.oauth import OAUTH_VERIFIER, OAuthVerifier
from beatmachine.auth.schemas import (
    AccessTokenRequest,
    AuthResult,
    AuthUser,
    DeleteAccountRequest,
    DeletionScheduled,
    ForgotPasswordRequest,
    IdTokenRequest,
    LoginRequest,
    OAuthResult,
    RefreshRequest,
    RegisteredUser,
    RegisterRequest,
    RegisterResult,
    ResetPasswordRequest,
    SessionList,
    SessionOut,
    TokenPair,
    VerifyEmailRequest,
)
from beatmachine.core.db import SessionDep
from beatmachine.core.responses import NoStore
from beatmachine.core.schemas import Envelope, Message, error_responses, ok
from beatmachine.core.state import StateDep

# Answers hand out tokens or list sessions, to callers with or without one: never cached.
router = APIRouter(prefix="/auth", tags=["auth"], dependencies=[NoStore])

FORGOT_PASSWORD_MESSAGE = "If an account exists for this email, a reset link is on its way."  # noqa: S105


async def _verifier(request: Request) -> OAuthVerifier:
    verifier: OAuthVerifier = request.app.state.services.extensions[OAUTH_VERIFIER]
    return verifier


VerifierDep = Annotated[OAuthVerifier, Depends(_verifier)]


def _tokens_result(user: AuthUser, tokens: service.IssuedTokens) -> AuthResult:
    return AuthResult(
        user=user,
        token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
    )


@router.post(
    "/register",
    status_code=201,
    response_model=Envelope[RegisterResult],
    responses=error_responses(409, 422, 429),
)
async def register(
    body: RegisterRequest, session: SessionDep, state: StateDep, client: ClientInfo
) -> Envelope[RegisterResult]:
    user, tokens = await service.register(
        session,
        state,
        email=str(body.email),
        password=body.password,
        display_name=body.display_name,
        client=client,
    )
    return ok(
        RegisterResult(
            user=RegisteredUser.model_validate(user),
            token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
        )
    )


@router.post(
    "/login", response_model=Envelope[AuthResult], responses=error_responses(401, 422, 429)
)
async def login(
    body: LoginRequest, session: SessionDep, state: StateDep, client: ClientInfo
) -> Envelope[AuthResult]:
    user, tokens = await service.login(
        session, state, email=body.email, password=body.password, client=client
    )
    return ok(_tokens_result(AuthUser.model_validate(user), tokens))


@router.post("/logout", response_model=Envelope[Message], responses=error_responses(401))
async def logout(session: SessionDep, auth: CurrentAuth) -> Envelope[Message]:
    await service.logout(session, auth)
    return ok(Message(message="Signed out."))


@router.post("/refresh", response_model=Envelope[TokenPair], responses=error_responses(401, 422))
async def refresh(
    body: RefreshRequest, session: SessionDep, state: StateDep, client: ClientInfo
) -> Envelope[TokenPair]:
    tokens = await service.refresh(session, state, body.refresh_token, client)
    return ok(
        TokenPair(
            token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
        )
    )


@router.post("/forgot-password", response_model=Envelope[Message], responses=error_responses(422))
async def forgot_password(
    body: ForgotPasswordRequest, session: SessionDep, state: StateDep
) -> Envelope[Message]:
    await service.forgot_password(session, state, str(body.email))
    return ok(Message(message=FORGOT_PASSWORD_MESSAGE))


@router.post(
    "/reset-password", response_model=Envelope[Message], responses=error_responses(400, 422)
)
async def reset_password(
    body: ResetPasswordRequest, session: SessionDep, state: StateDep
) -> Envelope[Message]:
    await service.reset_password(
        session, state, raw_token=body.token, new_password=body.new_password
    )
    return ok(Message(message="Your password has been changed; sign in with the new one."))


@router.post("/verify-email", response_model=Envelope[Message], responses=error_responses(400, 422))
async def verify_email(body: VerifyEmailRequest, session: SessionDep) -> Envelope[Message]:
    await service.verify_email(session, body.token)
    return ok(Message(message="Your e-mail address is confirmed."))


@router.post(
    "/resend-verification", response_model=Envelope[Message], responses=error_responses(401)
)
async def resend_verification(
    session: SessionDep, state: StateDep, user: CurrentUser
) -> Envelope[Message]:
    await service.send_verification_email(session, state, user)
    return ok(Message(message="If your e-mail is not confirmed yet, a new link is on its way."))


async def _oauth_result(
    session: SessionDep, state: StateDep, client: ClientInfo, identity: service.ProviderIdentity
) -> Envelope[OAuthResult]:
    user, tokens, created = await service.oauth_sign_in(session, state, identity, client)
    return ok(
        OAuthResult(
            user=AuthUser.model_validate(user),
            token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            expires_in=tokens.expires_in,
            is_new_user=created,
        )
    )


@router.post(
    "/oauth/google",
    response_model=Envelope[OAuthResult],
    responses=error_responses(401, 404, 422, 503),
)
async def oauth_google(
    body: IdTokenRequest,
    session: SessionDep,
    state: StateDep,
    client: ClientInfo,
    verifier: VerifierDep,
) -> Envelope[OAuthResult]:
    identity = await verifier.verify_google(body.id_token)
    return await _oauth_result(session, state, client, identity)


@router.post(
    "/oauth/apple",
    response_model=Envelope[OAuthResult],
    responses=error_responses(401, 404, 422, 503),
)
async def oauth_apple(
    body: IdTokenRequest,
    session: SessionDep,
    state: StateDep,
    client: ClientInfo,
    verifier: VerifierDep,
) -> Envelope[OAuthResult]:
    identity = await verifier.verify_apple(body.id_token)
    return await _oauth_result(session, state, client, identity)


@router.post(
    "/oauth/facebook",
    response_model=Envelope[OAuthResult],
    responses=error_responses(401, 404, 422, 503),
)
async def oauth_facebook(
    body: AccessTokenRequest,
    session: SessionDep,
    state: StateDep,
    client: ClientInfo,
    verifier: VerifierDep,
) -> Envelope[OAuthResult]:
    identity = await verifier.verify_facebook(body.access_token)
    return await _oauth_result(session, state, client, identity)


@router.get("/sessions", response_model=Envelope[SessionList], responses=error_responses(401))
async def list_sessions(session: SessionDep, auth: CurrentAuth) -> Envelope[SessionList]:
    sessions = await service.list_sessions(session, auth.user)
    return ok(
        SessionList(
            sessions=[
                SessionOut(
                    id=s.id,
                    ip=s.ip,
                    user_agent=s.user_agent,
                    created_at=s.created_at,
                    last_used_at=s.last_used_at,
                    expires_at=s.expires_at,
                    current=s.id == auth.session.id,
                )
                for s in sessions
            ]
        )
    )


@router.delete(
    "/sessions/{session_id}", response_model=Envelope[Message], responses=error_responses(401, 404)
)
async def revoke_session(
    session_id: str, session: SessionDep, user: CurrentUser
) -> Envelope[Message]:
    await service.revoke_session(session, user, session_id)
    return ok(Message(message="The session has been signed out."))


@router.post(
    "/delete-account",
    response_model=Envelope[DeletionScheduled],
    responses=error_responses(401, 422, 429),
)
async def delete_account(
    body: DeleteAccountRequest,
    session: SessionDep,
    state: StateDep,
    user: CurrentUser,
    client: ClientInfo,
) -> Envelope[DeletionScheduled]:
    """Schedule the account's deletion; the password (for accounts that have one) is
    checked and throttled like a sign-in's."""
    await service.request_deletion(session, state, user, body.password, client)
    assert user.deletion_scheduled_at is not None
    return ok(
        DeletionScheduled(
            message="Your account will be deleted; sign in before then to keep it.",
            deletion_scheduled_at=user.deletion_scheduled_at,
        )
    )
