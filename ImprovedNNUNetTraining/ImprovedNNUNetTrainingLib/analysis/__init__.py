"""Analysis of trained runs: comparing runs, finding the best configuration, studies (arms over folds)."""
