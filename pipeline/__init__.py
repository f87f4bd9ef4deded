"""Hand-gesture recognition with explainable CNNs.

The stages, in the order a frame flows through them (each a subpackage; a stage imports only the
stages before it, see ``tests/test_layers.py``):

``preprocess`` (sources -> MediaPipe hands -> 28x28 crops) -> ``draw`` (annotations, heat maps on frames)
-> ``data`` (datasets on disk and in memory) -> ``lenet`` (the LeNet-5 family, checkpoints) ->
``training`` (the loop, runs, calibration, evaluation, the study) -> ``explainers`` (saliency,
Grad-CAM) -> ``live`` (the per-frame live path) -> ``ui`` (windows and sessions).

The commands sit beside them: ``collect``, ``train``, ``evaluate``, ``demo``, ``explain``, ``study``,
``export``, and ``cli`` (``handcam COMMAND``).
"""

__version__ = "0.2.0"
