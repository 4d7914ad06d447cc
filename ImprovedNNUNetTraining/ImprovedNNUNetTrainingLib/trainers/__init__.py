"""nnU-Net v2 trainer variants of the three papers README cites (Wu; Wang and Zhang; He et al.), one module per variant."""
