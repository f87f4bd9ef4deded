"""The model stage: the LeNet-5 family (``model``), checkpoints and how every command loads one (``checkpoint``), and ONNX
export (``onnx_export``).
"""
