"""Sign-up, sign-in, sessions and their tokens, password reset, e-mail verification,
OAuth sign-in and account deletion, one concern per module."""

from beatmachine.auth.oauth import ProviderIdentity
from beatmachine.auth.service._deletion import purge_deleted_accounts, request_deletion
from beatmachine.auth.service._oauth_linking import oauth_sign_in
from beatmachine.auth.service._one_time import (
    RESET_PURPOSE,
    VERIFY_PURPOSE,
    forgot_password,
    reset_password,
    send_verification_email,
    verify_email,
)
from beatmachine.auth.service._sessions import (
    LAST_USED_RESOLUTION,
    Authenticated,
    Client,
    IssuedTokens,
    authenticate,
    list_sessions,
    logout,
    refresh,
    revoke_session,
    start_session,
)
from beatmachine.auth.service._signin import login, register

__all__ = [
    "LAST_USED_RESOLUTION",
    "RESET_PURPOSE",
    "VERIFY_PURPOSE",
    "Authenticated",
    "Client",
    "IssuedTokens",
    "ProviderIdentity",
    "authenticate",
    "forgot_password",
    "list_sessions",
    "login",
    "logout",
    "oauth_sign_in",
    "purge_deleted_accounts",
    "refresh",
    "register",
    "request_deletion",
    "reset_password",
    "revoke_session",
    "send_verification_email",
    "start_session",
    "verify_email",
]
