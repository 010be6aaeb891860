"""Moved to the testing kit (`conversation_service.testing.served`); this name stays for
tests written before it. Import from the kit."""

from conversation_service.testing.served import COMMAND, Served, cli, serve, served

__all__ = ["COMMAND", "Served", "cli", "serve", "served"]
