"""The live path of a video frame after MediaPipe: crops, one model batch, tracks per hand, Grad-CAM; and stage times.
"""
