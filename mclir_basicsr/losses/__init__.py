"""What the losses of several methods share: the VGG feature extractor and its weights (never downloaded)."""
