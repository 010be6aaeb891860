"""Moved to the testing kit (`conversation_service.testing.scripted`); this name stays for
tests written before it. Import from the kit."""

from conversation_service.testing.scripted import Script, ScriptedCatalog, ScriptedModel

__all__ = ["Script", "ScriptedCatalog", "ScriptedModel"]
