"""The Improved nnU-Net Training panel's logic, its training job, curves, comparison table and the dataset
export from the scene. No Qt: the module file wires the widgets to this."""
