"""What memory a model needs and where it goes.

Importing this package imports no torch: the analytic estimator runs inside the language
server on every edit. The exact (meta-device) estimator and the measurements import
torch lazily, inside the functions that need it.
"""
