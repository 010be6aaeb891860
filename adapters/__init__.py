"""Concrete parts behind the ports: storage, language models, session actors, the service."""
