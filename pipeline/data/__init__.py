"""The data stage: datasets of crops on disk (``store``), in memory (``load``, ``spec``), split by group (``splits``);
importing labelled folders (``folder_import``) with label reviews (``review``); the public 28x28 sets (``public``)
and their near-copies (``near_copies``).
"""
