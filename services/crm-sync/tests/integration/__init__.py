"""crm-sync integration tests (a package, so mypy resolves their relative imports)."""
