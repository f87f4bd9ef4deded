"""``python -m pipeline``: the same as the ``handcam`` command."""

from pipeline.cli import entry

entry("python -m pipeline")
