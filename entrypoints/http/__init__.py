"""The Quart-Trio HTTP/SSE API."""
