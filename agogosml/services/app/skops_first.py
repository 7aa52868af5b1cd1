"""Imported by the app's entry point before anything imports MLflow.

agogosml's model loop saves scikit-learn models with skops, so loading one imports
skops.io, whose import looks up each numpy and scipy ufunc it trusts in every module
loaded so far (skops.io._utils.whichmodule). Before MLflow, pandas and FastAPI fill
sys.modules that lookup is ~3x cheaper: about 1.5 s less CPU to a ready app
(bench.coldstart).
"""

from __future__ import annotations

import contextlib
import importlib

with contextlib.suppress(ImportError):  # skops is optional: other flavours do without
    importlib.import_module("skops.io")
