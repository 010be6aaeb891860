"""Session actors: one trio task per active chat session, and the supervisor that runs them."""
