"""The fault-injection suite reuses the integration suite's fixtures (see chaoslib.py)."""
from chaoslib import base

workdir = base.workdir
fpmd = base.fpmd
