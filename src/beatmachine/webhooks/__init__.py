"""The webhooks domain: endpoints that administrators register receive signed deliveries
(Standard Webhooks) of what happens to public content, retried with backoff, every
attempt logged."""
