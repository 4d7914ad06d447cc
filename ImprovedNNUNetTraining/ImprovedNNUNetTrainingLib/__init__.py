"""ImprovedNNUNet training core: nnU-Net v2 trainer variants, planning and training runs (no Qt)."""
