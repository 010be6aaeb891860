"""The pure core of the Conversation Service: values, rules and the session state machine.

Imports the standard library and attrs only; no I/O, no clocks, no randomness.
"""
