"""ConStyle / IRConStyle: the contrastive style prompter, ConStyleNAFNet, the prompter's losses, the model classes
and the authors' key map."""
