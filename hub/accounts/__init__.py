"""Staff users, groups, API tokens, passwords and login rate limiting."""
