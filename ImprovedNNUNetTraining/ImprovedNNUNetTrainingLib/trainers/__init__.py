"""nnU-Net v2 trainer variants of the three seed papers, one module per variant."""
