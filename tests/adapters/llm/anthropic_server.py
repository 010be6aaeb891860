"""Moved to the testing kit (`conversation_service.testing.upstream.anthropic`); this name
stays for tests written before it. Import from the kit."""

from conversation_service.testing.upstream.anthropic import *  # noqa: F403
