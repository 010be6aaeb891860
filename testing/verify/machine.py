"""The API's rule-based state machine: organisations make conversations and sessions, list and
page them (conversations.py), stream, re-attach, cancel and interrupt replies (replies.py),
and try each other's objects and send what must be refused (boundaries.py). Every answer is
checked against the plain model of model.py; what disagrees raises a Disagreement naming
its kind."""

from __future__ import annotations

from conversation_service.testing.verify.boundaries import BoundaryRules
from conversation_service.testing.verify.conversations import ConversationRules
from conversation_service.testing.verify.replies import ReplyRules


class DeploymentMachine(ConversationRules, ReplyRules, BoundaryRules):
    """Every rule, against one Target (its organisations made new for each example, or
    shared)."""
