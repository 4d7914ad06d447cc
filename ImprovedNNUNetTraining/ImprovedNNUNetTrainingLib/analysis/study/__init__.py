"""Studies: trainings of several arms (a variant with settings) over folds, run locally or on SLURM, and
their report (per-label mean ± sd, paired Wilcoxon tests against the baseline arm, box plots)."""
