"""The drawing stage: plain functions that draw on BGR frames: annotations (text, hands, panels, insets) and heat maps
put back on the hand through the crop's affine.
"""
