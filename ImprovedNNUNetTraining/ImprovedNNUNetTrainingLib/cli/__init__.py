"""Training sub-commands of `improved-nnunet` (prepare, train, compare)."""
