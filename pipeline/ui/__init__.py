"""The windows and sessions people use: the OpenCV window, the recording session (collect) and the demo session.
"""
