"""The training stage: augmentation, the loop, a run from dataset to ``runs/NAME/``, calibration, evaluation on labelled
photos through the whole path, reports, the architecture study, and the landmark-MLP baseline.
"""
