"""The ways in: the HTTP/SSE API, the command line, and the composition root."""
