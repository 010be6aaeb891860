"""A stateful verifier of a deployment: the API's rule-based state machine (machine.py,
replies.py) against a plain model (model.py), pointed at any URL with a token.

    conversation-service verify https://chat.example.com --token T --org O --examples 20

or from Python:

    with httpx.Client(base_url=url) as http:
        outcome = verify(connect(http, [Tenant(org_id=org, token=token)]), examples=20)
    print(outcome.report())
"""

from conversation_service.testing.verify.api import Disagreement, Tenant
from conversation_service.testing.verify.machine import DeploymentMachine
from conversation_service.testing.verify.run import Outcome, verify
from conversation_service.testing.verify.target import Target, TargetError, connect

__all__ = [
    "DeploymentMachine",
    "Disagreement",
    "Outcome",
    "Target",
    "TargetError",
    "Tenant",
    "connect",
    "verify",
]
