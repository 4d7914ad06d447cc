"""The Improved nnU-Net panel's logic, its segmentation job and child worker, and the scene (MRML) code
both panels use. No Qt: the module file wires the widgets to this."""
