"""The roles the core needs filled, as typing.Protocols; adapters implement them."""
