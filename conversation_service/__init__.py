"""The Conversation Service: conversations, chat sessions on language models, replies streamed
over Server-Sent Events.

Installed, the layers live under this one name: `conversation_service.domain` (pure values and
rules), `.ports` (the Protocols the core needs filled), `.service_layer` (the use cases),
`.adapters` (storage, models, session actors) and `.entrypoints` (HTTP, the CLI, the
composition root); `.client` is a standalone HTTP client for the service, which imports none of
the layers; `.testing` is the testing kit (strategies, a scripted model, the store contract,
pytest fixtures, a verifier of deployments), which imports them all and which none imports.
In the repository the layer folders sit at the top level; the entries of this folder are
links to them, so that the source tree, editable installs, mypy, import-linter and the wheel
all see the same package.
"""
