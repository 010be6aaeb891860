"""The registry file: the bundled default loads, and every mistake is named precisely."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from uuid import UUID

import pytest

from conversation_service.adapters.llm.echo import ECHO_MODEL_ID
from conversation_service.adapters.llm.registry_file import (
    RegistryError,
    load_registry,
    parse_registry,
)
from conversation_service.adapters.llm.retries import Retries
from conversation_service.adapters.llm.upstream import Timeouts

GOOD_ENTRY = """
[[models]]
id = "457d4f38-e3c0-43eb-b519-a867f9f5325a"
name = "gpt-4o-mini"
provider = "openai"
base_url = "https://api.openai.com/v1/"
upstream_model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
"""


def test_the_bundled_registry_has_only_the_echo_settings():
    registry = load_registry(None)

    assert registry.echo_delay == pytest.approx(0.03)
    assert registry.models == ()


def test_the_bundled_examples_are_valid_once_uncommented():
    text = (
        resources.files("conversation_service.adapters.llm")
        .joinpath("models.toml")
        .read_text("utf-8")
    )
    example = re.compile(r"^# ?(\[\[models\]\]|\[titles\]|[a-z_]+ = .*)$")
    uncommented = "\n".join(
        example.sub(r"\1", line) if example.match(line) else line for line in text.splitlines()
    )

    registry = parse_registry(uncommented, source="uncommented")

    assert [(m.name, m.provider, m.api_key_env) for m in registry.models] == [
        ("gpt-4o-mini", "openai", "OPENAI_API_KEY"),
        ("claude-sonnet-4", "anthropic", "ANTHROPIC_API_KEY"),
        ("llama3.2 (local)", "ollama", None),
    ]
    openai, anthropic, ollama = registry.models
    assert (openai.context_window, openai.max_output_tokens) == (128000, 16384)
    assert anthropic.base_url == "https://api.anthropic.com"
    assert (anthropic.default_max_tokens, anthropic.retries.max_retries) == (4096, 3)
    assert ollama.base_url == "http://127.0.0.1:11434/v1"
    assert ollama.timeouts.first_token == 120
    assert registry.title_model_id == openai.id


def test_a_full_entry_is_read(tmp_path: Path):
    path = tmp_path / "models.toml"
    path.write_text(
        "[echo]\ndelay_ms = 5\n"
        + GOOD_ENTRY
        + "connect_timeout = 2\nfirst_token_timeout = 30\nidle_timeout = 10.5\n"
        + "total_timeout = 300\n"
    )

    registry = load_registry(path)

    [model] = registry.models
    assert registry.echo_delay == pytest.approx(0.005)
    assert model.id == UUID("457d4f38-e3c0-43eb-b519-a867f9f5325a")
    assert model.base_url == "https://api.openai.com/v1"
    assert model.upstream_model == "gpt-4o-mini"
    assert model.timeouts == Timeouts(connect=2, first_token=30, idle=10.5, total=300)


def test_timeouts_default_when_left_out():
    [model] = parse_registry(GOOD_ENTRY, source="f.toml").models

    assert model.timeouts == Timeouts()


def test_limits_and_retries_default_when_left_out():
    [model] = parse_registry(GOOD_ENTRY, source="f.toml").models

    assert (model.context_window, model.max_output_tokens) == (8192, 1024)
    assert model.retries == Retries()
    assert model.default_max_tokens is None  # only Anthropic's API needs one


def test_limits_and_retries_are_read():
    text = GOOD_ENTRY + (
        "context_window = 128000\nmax_output_tokens = 16384\n"
        "max_retries = 0\nmax_retry_wait = 2.5\n"
    )

    [model] = parse_registry(text, source="f.toml").models

    assert (model.context_window, model.max_output_tokens) == (128000, 16384)
    assert (model.retries.max_retries, model.retries.max_wait) == (0, 2.5)


ANTHROPIC_ENTRY = """
[[models]]
id = "c3b6e2a4-5d0f-4f7e-8a1b-2e9d4c6f8a10"
name = "claude"
provider = "anthropic"
upstream_model = "claude-sonnet-4-20250514"
api_key_env = "ANTHROPIC_API_KEY"
"""


def test_an_anthropic_entry_defaults_its_base_url_and_max_tokens():
    [model] = parse_registry(ANTHROPIC_ENTRY, source="f.toml").models

    assert model.base_url == "https://api.anthropic.com"
    assert model.default_max_tokens == 1024


def test_an_anthropic_entry_may_name_its_own_base_url_and_max_tokens():
    text = ANTHROPIC_ENTRY + 'base_url = "https://proxy.example/anthropic/"\n'
    text += "max_output_tokens = 8192\ndefault_max_tokens = 2000\n"

    [model] = parse_registry(text, source="f.toml").models

    assert model.base_url == "https://proxy.example/anthropic"
    assert model.default_max_tokens == 2000


def test_default_max_tokens_never_exceeds_a_small_max_output():
    text = ANTHROPIC_ENTRY + "max_output_tokens = 500\n"

    [model] = parse_registry(text, source="f.toml").models

    assert model.default_max_tokens == 500


def test_an_empty_file_gives_the_default_echo_delay_and_no_models():
    registry = parse_registry("", source="f.toml")

    assert registry.echo_delay == pytest.approx(0.03)
    assert registry.models == ()


def test_the_title_model_is_one_of_the_registrys_or_echo():
    named = parse_registry(
        GOOD_ENTRY + '[titles]\nmodel_id = "457d4f38-e3c0-43eb-b519-a867f9f5325a"\n', source="f"
    )
    assert str(named.title_model_id) == "457d4f38-e3c0-43eb-b519-a867f9f5325a"
    echo = parse_registry(f'[titles]\nmodel_id = "{ECHO_MODEL_ID}"\n', source="f")
    assert echo.title_model_id == ECHO_MODEL_ID
    assert parse_registry("[titles]\n", source="f").title_model_id is None


def replaced(field: str, line: str | None) -> str:
    """GOOD_ENTRY with `field`'s line replaced by `line` (or removed)."""
    kept = [x for x in GOOD_ENTRY.splitlines() if not x.startswith(f"{field} =")]
    return "\n".join(kept + ([line] if line else []))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (replaced("id", 'id = "not-a-uuid"'), "models[0] ('gpt-4o-mini'): field 'id': not a UUID"),
        (replaced("id", "id = 7"), "field 'id': not a UUID"),
        (replaced("id", None), "models[0] ('gpt-4o-mini'): field 'id': missing"),
        (replaced("name", None), "models[0]: field 'name': missing"),
        (replaced("base_url", None), "field 'base_url': missing"),
        (replaced("upstream_model", 'upstream_model = ""'), "field 'upstream_model': must be"),
        (replaced("provider", 'provider = "acme"'), "field 'provider': unknown provider 'acme'"),
        (replaced("provider", 'provider = "echo"'), "field 'provider': unknown provider"),
        (replaced("base_url", 'base_url = "api.openai.com"'), "field 'base_url': must be an http"),
        (GOOD_ENTRY + "temperature = 0.2\n", "models[0] ('gpt-4o-mini'): unknown field 'temp"),
        (GOOD_ENTRY + "idle_timeout = 0\n", "field 'idle_timeout': must be a number of seconds"),
        (GOOD_ENTRY + 'total_timeout = "1m"\n', "field 'total_timeout': must be a number"),
        (GOOD_ENTRY + "total_timeout = inf\n", "field 'total_timeout': must be a number"),
        (replaced("id", f'id = "{ECHO_MODEL_ID}"'), "field 'id': 6563686f-0000-4000-8000-0000000"),
        (GOOD_ENTRY + GOOD_ENTRY, "models[1] ('gpt-4o-mini'): field 'id': 457d4f38-e3c0"),
        (
            GOOD_ENTRY + replaced("id", 'id = "0b0c3a52-4f6e-4d8e-9a57-3f1f4c2a9e11"'),
            "models[1] ('gpt-4o-mini'): field 'name': already used by models[0]",
        ),
        (replaced("name", 'name = "echo"'), "field 'name': 'echo' is the built-in"),
        ("[echo]\ndelay_ms = -1\n", "[echo]: field 'delay_ms': must be a number >= 0"),
        ("[echo]\ndelay = 1\n", "[echo]: unknown field 'delay'"),
        ("echo = 3\n", "[echo]: must be a table"),
        ("model = []\n", "f.toml: unknown field 'model'"),
        ("models = 3\n", "'models' must be an array of tables"),
        ("models = [3]\n", "models[0]: must be a table"),
        ("[[models]]\nid = \n", "f.toml: not valid TOML"),
        (GOOD_ENTRY + "context_window = 0\n", "field 'context_window': must be a whole number"),
        (GOOD_ENTRY + "context_window = 1.5\n", "field 'context_window': must be a whole"),
        (GOOD_ENTRY + 'max_output_tokens = "1k"\n', "field 'max_output_tokens': must be a whole"),
        (
            GOOD_ENTRY + "context_window = 4096\nmax_output_tokens = 8192\n",
            "field 'max_output_tokens': 8192 is more than the context_window (4096)",
        ),
        (GOOD_ENTRY + "max_retries = -1\n", "field 'max_retries': must be a whole number >= 0"),
        (GOOD_ENTRY + "max_retries = true\n", "field 'max_retries': must be a whole number"),
        (GOOD_ENTRY + "max_retry_wait = -1\n", "field 'max_retry_wait': must be a number of"),
        (GOOD_ENTRY + "max_retry_wait = inf\n", "field 'max_retry_wait': must be a number"),
        (GOOD_ENTRY + "default_max_tokens = 100\n", "'default_max_tokens': only for provider"),
        (
            ANTHROPIC_ENTRY + "default_max_tokens = 2048\n",
            "models[0] ('claude'): field 'default_max_tokens': 2048 is more than max_output",
        ),
        (ANTHROPIC_ENTRY + "default_max_tokens = 0\n", "field 'default_max_tokens': must be"),
        ("titles = 3\n", "f.toml: [titles]: must be a table"),
        ("[titles]\nmodel = 1\n", "[titles]: unknown field 'model'"),
        ('[titles]\nmodel_id = "gpt"\n', "[titles]: field 'model_id': not a UUID: 'gpt'"),
        (
            GOOD_ENTRY + '[titles]\nmodel_id = "0b0c3a52-4f6e-4d8e-9a57-3f1f4c2a9e11"\n',
            "[titles]: field 'model_id': 0b0c3a52-4f6e-4d8e-9a57-3f1f4c2a9e11 is not the id of",
        ),
    ],
)
def test_a_mistake_is_named_with_file_entry_and_field(text, expected):
    with pytest.raises(RegistryError) as info:
        parse_registry(text, source="f.toml")

    assert str(info.value).startswith("f.toml: ")
    assert expected in str(info.value)


def test_a_key_in_the_file_is_refused_without_repeating_it():
    with pytest.raises(RegistryError) as info:
        parse_registry(GOOD_ENTRY + 'api_key = "sk-secret-value"\n', source="f.toml")

    message = str(info.value)
    assert "field 'api_key'" in message and "api_key_env" in message
    assert "sk-secret-value" not in message


def test_a_key_given_as_api_key_env_is_refused_without_repeating_it():
    text = replaced("api_key_env", 'api_key_env = "sk-proj-AbC123"')

    with pytest.raises(RegistryError) as info:
        parse_registry(text, source="f.toml")

    assert "field 'api_key_env': must be the NAME of an environment variable" in str(info.value)
    assert "sk-proj-AbC123" not in str(info.value)


def test_a_missing_file_is_a_registry_error_naming_it(tmp_path: Path):
    path = tmp_path / "nowhere.toml"

    with pytest.raises(RegistryError, match=re.escape(str(path))):
        load_registry(path)


def test_registry_error_is_a_value_error():
    assert issubclass(RegistryError, ValueError)
