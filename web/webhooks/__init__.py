"""Recording webhooks (Standard Webhooks): endpoints, the outbox, and its delivery worker."""

from web.webhooks.events import EVENT_TYPES

__all__ = ["EVENT_TYPES"]
