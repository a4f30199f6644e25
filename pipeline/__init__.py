"""R1 Studio's training pipeline: the four stage kinds of the DeepSeek-R1 recipe on TRL.

A plain package with no Django in it: ``python -m pipeline run CONFIG --run-dir DIR`` runs one
stage and appends its events to ``DIR/events.jsonl`` (see ``pipeline.reporting``).
"""

import os

# OpenMP threads that spin while waiting make torch many times slower on a CPU shared with other
# processes (measured 3.9 s vs 22 s for the same toy pretraining on 2 busy cores); passive
# waiting costs little when the machine is idle. Must be set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
