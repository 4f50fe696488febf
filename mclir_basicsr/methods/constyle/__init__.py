"""ConStyle / IRConStyle: the contrastive style prompter, the prompted restorers (ConStyleNAFNet, ConStyleRestormer,
ConStyleMaxim), the prompter's losses, the model classes, the authors' key map, and how IRConStyle's own option files
are read (their model types, datasets and names)."""
