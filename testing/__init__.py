"""The testing kit: what a property-based suite needs to test an app built on the service, a
new store adapter, or a deployment.

- `strategies`: Hypothesis strategies for every domain value and request body, valid ones
  and the invalid ones the service must refuse.
- `scripted`: a language model whose replies a test scripts (chunks, pacing, failures);
  `upstream`: the same scripts served by an OpenAI-compatible HTTP server on a real socket.
- `store_contract`: the ConversationStore contract as a class to subclass, the Hypothesis
  agreement run included; `values`: the domain values it builds.
- `in_process` and `served`: the service in the test's process on the in-memory store, or a
  real `conversation-service serve` on a free port; `plugin` makes both pytest fixtures (a
  `pytest11` entry point, loaded wherever the package is installed).
- `verify`: the API's rule-based state machine pointed at a live deployment
  (`conversation-service verify URL --token T --org O`).

It needs the `testing` extra (Hypothesis, pytest, pytest-trio). Nothing in the service
imports it; it may import every layer.
"""
