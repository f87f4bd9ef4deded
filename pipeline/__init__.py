"""Hand-gesture recognition with explainable CNNs.

The stages, in the order a frame flows through them:
``sources`` -> ``hands`` -> ``crops`` -> (``data`` for collect) -> models -> explain -> draw.
"""

__version__ = "0.1.0"
