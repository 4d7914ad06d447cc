"""The training run engine: checks, run records, the nnU-Net training loop, progress events, cancelling,
preparation, splits and the `train` command line."""
