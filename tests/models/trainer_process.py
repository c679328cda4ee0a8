"""A process that starts a long training in the background and then waits to be killed
(tests/models/test_background.py kills it and looks for what it left behind)."""

from __future__ import annotations

import sys
import time

from kinetic_rules.models import BackgroundTrainer, ModelCache
from tests.models.test_background import long_training

if __name__ == "__main__":
    trainer = BackgroundTrainer(ModelCache(None))
    trainer.submit("long", *long_training())
    print("training", flush=True)
    sys.stdin.read()  # until killed
    time.sleep(3600)
