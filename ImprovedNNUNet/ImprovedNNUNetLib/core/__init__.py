"""Core: errors, image I/O and integrity, safe writing, child processes, locks, manifests, dependencies,
and the torch-free table of the training variants. Imports nothing above it."""
