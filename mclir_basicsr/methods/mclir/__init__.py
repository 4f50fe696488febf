"""MCLIR / SPN (Wu et al., AAAI 2024): history copies of the network as negatives, the SPN loss, its automatic
weight and diagnostics, the MCLIR model classes (SPN on any base class) and the authors' class names."""
