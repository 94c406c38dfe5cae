"""The notebook face: %novita magics, ipywidgets panels and display helpers.
The only package that imports IPython and ipywidgets, and only when used.
"""
