"""How the webhooks domain attaches to an app instance: its listeners on the events of
patterns and social, the delivery job, and the guarded HTTP client it sends through."""

from __future__ import annotations

from functools import partial

from beatmachine.core.jobs import PeriodicJob
from beatmachine.core.state import AppState
from beatmachine.patterns.events import PatternCreated, PatternLiked
from beatmachine.social.events import CommentCreated, UserFollowed
from beatmachine.webhooks import listeners, service

OUTBOUND_CLIENT = "webhooks.outbound"
PRUNE_DELIVERIES_EVERY_SECONDS = 3600


def setup(state: AppState) -> None:
    """Register the listeners, the delivery job and the hourly removal of deliveries past
    retention; the HTTP client closes at shutdown."""
    client = service.outbound_client(state)
    state.extensions[OUTBOUND_CLIENT] = client
    state.on_shutdown.append(client.aclose)

    async def deliver(delivery_id: str, number: int) -> None:
        await service.deliver(state, client, delivery_id, number)

    # One attempt per job; a failed attempt is recorded and its retry queued by the job
    # itself (the delivery schedule). Only an unexpected error (the database away) fails
    # the job, and the queue's own retries run it again.
    state.jobs.register(service.DELIVER_JOB, deliver)
    state.events.listen(
        PatternCreated, "webhooks.pattern_created", partial(listeners.pattern_created, state)
    )
    state.events.listen(
        PatternLiked, "webhooks.pattern_liked", partial(listeners.pattern_liked, state)
    )
    state.events.listen(
        CommentCreated, "webhooks.comment_created", partial(listeners.comment_created, state)
    )
    state.events.listen(
        UserFollowed, "webhooks.user_followed", partial(listeners.user_followed, state)
    )

    async def prune(_period: int) -> int:
        return await service.prune_deliveries(state)

    state.scheduler.add(
        PeriodicJob("prune-webhook-deliveries", PRUNE_DELIVERIES_EVERY_SECONDS, prune)
    )
