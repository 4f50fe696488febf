"""NAFNet (megvii-research/NAFNet): its model class ImageRestorationModel, PSNRLoss and metrics; the networks
(NAFNet, NAFNetLocal, Baseline, BaselineLocal) are shared, in ``mclir_basicsr.archs``."""
