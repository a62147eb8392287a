"""2D vertebral body and disc segmentation on MR, CT and X-ray, with radiomics and heights.

Public entry point: :func:`neurospine.slice2d.api.run_file`. The canonical 2D layout used everywhere in
this package is ``pixels[row, col]`` with rows running superior -> inferior and columns anterior ->
posterior (a lateral view, patient facing image-left).
"""
