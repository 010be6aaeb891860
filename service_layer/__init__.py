"""The use cases: what a caller (the HTTP edge, or an app embedding the library) can do.

Depends on the domain and the ports only; the stores, the models and the session actors are
reached through ports, and the shapes of JSON and SSE are the HTTP edge's business.
"""
