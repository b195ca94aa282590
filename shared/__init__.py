"""Models, rules and adapters shared by every function and by the pipeline's read path.

Importing this package is cheap: no Google client is created or imported here.
"""
