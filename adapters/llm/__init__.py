"""Language models: the built-in echo model, OpenAI-compatible servers, and their catalog."""

from adapters.llm.catalog import RegistryCatalog, open_catalog
from adapters.llm.echo import ECHO_MODEL_ID, EchoModel
from adapters.llm.openai_chat import OpenAIChatModel, Timeouts
from adapters.llm.registry_file import (
    RegisteredModel,
    Registry,
    RegistryError,
    load_registry,
    parse_registry,
)

__all__ = [
    "ECHO_MODEL_ID",
    "EchoModel",
    "OpenAIChatModel",
    "RegisteredModel",
    "Registry",
    "RegistryCatalog",
    "RegistryError",
    "Timeouts",
    "load_registry",
    "open_catalog",
    "parse_registry",
]
