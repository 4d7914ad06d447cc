"""The GPU server face: `improved-nnunet serve` (FastAPI + uvicorn), its job store and scheduler, and the
torch-free client the panels, the Python console and the command line use."""
