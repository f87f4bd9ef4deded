"""The preprocessing stage: frames from a source, the hands MediaPipe finds in them, and each hand as a 28x28 crop.

``sources`` (webcam, video, images) -> ``hands`` (MediaPipe HandLandmarker; ``detector_process`` runs it
in a process of its own) -> ``crops`` (upright, mirrored by chirality, masked). ``photo_folders`` lists
labelled photo folders and detects their hands over worker processes.
"""
