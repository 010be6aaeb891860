"""Hypothesis strategies for the service's values and requests.

- `texts`: titles, messages and system prompts the service takes (Unicode's edge cases
  mixed in, lengths up to the limits) and the ones it refuses (blank, NUL, too long, an
  unpaired surrogate).
- `domain`: valid domain values (organisations, conversations, sessions, messages in every
  status, usage, params) and `any_value_of(type)`, rules or not.
- `bodies`: every request body the service must take, around the ids a test has made.
- `refused`: requests it must answer 400, each with the field the answer names
  (`Refused`), and ids of other organisations (`foreign_ids`, answered 404); made from
  `fields`: what each field of a body takes (`Field`, `schemas()`) and `wrong_values`.

    from conversation_service.testing import strategies as cs

    @given(body=cs.create_conversation_bodies())
    def test_...(body): ...
"""

from conversation_service.testing.strategies.bodies import (
    cancel_bodies,
    clear_feedback_bodies,
    complete_session_bodies,
    create_conversation_bodies,
    create_session_bodies,
    delete_conversation_bodies,
    edit_bodies,
    feedback_bodies,
    id_texts,
    model_names,
    regenerate_bodies,
    register_model_bodies,
    select_branch_bodies,
    session_params_bodies,
    stream_chat_bodies,
    update_conversation_bodies,
)
from conversation_service.testing.strategies.domain import (
    any_value_of,
    chat_sessions,
    conversations,
    generation_params,
    ids,
    instants,
    latencies,
    messages,
    orgs,
    pages_of,
    principals,
    session_inputs,
    session_states,
    usages,
)
from conversation_service.testing.strategies.fields import (
    Field,
    register_model_schema,
    schemas,
    wrong_values,
)
from conversation_service.testing.strategies.refused import (
    Refused,
    foreign_ids,
    other_org_ids,
    refused_bodies,
    refused_cancel_bodies,
    refused_clear_feedback_bodies,
    refused_complete_session_bodies,
    refused_create_conversation_bodies,
    refused_create_session_bodies,
    refused_delete_conversation_bodies,
    refused_edit_bodies,
    refused_feedback_bodies,
    refused_list_queries,
    refused_regenerate_bodies,
    refused_register_model_bodies,
    refused_select_branch_bodies,
    refused_stream_chat_bodies,
    refused_update_conversation_bodies,
)
from conversation_service.testing.strategies.texts import (
    UNICODE_EDGES,
    blank_texts,
    message_texts,
    refused_texts,
    system_prompts,
    texts,
    texts_with_nul,
    titles,
    too_long,
    whitespace,
    with_lone_surrogate,
    words,
)

__all__ = [
    "UNICODE_EDGES",
    "Field",
    "Refused",
    "any_value_of",
    "blank_texts",
    "cancel_bodies",
    "chat_sessions",
    "clear_feedback_bodies",
    "complete_session_bodies",
    "conversations",
    "create_conversation_bodies",
    "create_session_bodies",
    "delete_conversation_bodies",
    "edit_bodies",
    "feedback_bodies",
    "foreign_ids",
    "generation_params",
    "id_texts",
    "ids",
    "instants",
    "latencies",
    "message_texts",
    "messages",
    "model_names",
    "orgs",
    "other_org_ids",
    "pages_of",
    "principals",
    "refused_bodies",
    "refused_cancel_bodies",
    "refused_clear_feedback_bodies",
    "refused_complete_session_bodies",
    "refused_create_conversation_bodies",
    "refused_create_session_bodies",
    "refused_delete_conversation_bodies",
    "refused_edit_bodies",
    "refused_feedback_bodies",
    "refused_list_queries",
    "refused_regenerate_bodies",
    "refused_register_model_bodies",
    "refused_select_branch_bodies",
    "refused_stream_chat_bodies",
    "refused_texts",
    "refused_update_conversation_bodies",
    "regenerate_bodies",
    "register_model_bodies",
    "register_model_schema",
    "schemas",
    "select_branch_bodies",
    "session_inputs",
    "session_params_bodies",
    "session_states",
    "stream_chat_bodies",
    "system_prompts",
    "texts",
    "texts_with_nul",
    "titles",
    "too_long",
    "update_conversation_bodies",
    "usages",
    "whitespace",
    "with_lone_surrogate",
    "words",
    "wrong_values",
]
