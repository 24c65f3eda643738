"""What compression costs, measured: perplexity and embedding cosine (``quality.py``),
decode speed and the bandwidth floor (``speed.py``), the measured profile run
(``profile_run.py``) and the calibration texts (``texts.py``). Importing this package
imports none of them."""
