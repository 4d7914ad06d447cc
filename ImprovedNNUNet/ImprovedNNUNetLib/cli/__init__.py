"""Command line `improved-nnunet`; one module per sub-command."""
