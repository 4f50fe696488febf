"""DCPT (ICLR 2025): degradation-classification pre-training and transfer, the classifier network, the focal loss,
feature hooks and the degradation probe."""
