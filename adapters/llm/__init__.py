"""Language models: the built-in echo model, OpenAI-compatible servers, Anthropic's Messages
API, and the catalog that offers them."""

from conversation_service.adapters.llm.anthropic_messages import AnthropicMessagesModel
from conversation_service.adapters.llm.catalog import RegistryCatalog, build_model, open_catalog
from conversation_service.adapters.llm.echo import ECHO_MODEL_ID, EchoModel
from conversation_service.adapters.llm.openai_chat import OpenAIChatModel
from conversation_service.adapters.llm.registry_entry import (
    RegisteredModel,
    RegistryError,
    parse_model_entry,
)
from conversation_service.adapters.llm.registry_file import Registry, load_registry, parse_registry
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import Timeouts
from conversation_service.adapters.llm.url_guard import UnsafeModelURL, check_public_url

__all__ = [
    "ECHO_MODEL_ID",
    "AnthropicMessagesModel",
    "EchoModel",
    "OpenAIChatModel",
    "RegisteredModel",
    "Registry",
    "RegistryCatalog",
    "RegistryError",
    "Retries",
    "Timeouts",
    "UnsafeModelURL",
    "build_model",
    "check_public_url",
    "load_registry",
    "open_catalog",
    "parse_model_entry",
    "parse_registry",
]
