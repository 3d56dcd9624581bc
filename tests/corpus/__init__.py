"""Generated test inputs: hostile export files with the outcome each must have."""
