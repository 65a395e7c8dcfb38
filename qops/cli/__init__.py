"""The composition root: the ``qops`` command line, which builds settings, services and
servers and starts flows. The only part of ``qops`` that may import Prefect and the
``flows``/``tasks``/``blocks`` layers.
"""
