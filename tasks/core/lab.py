"""One run's context, passed to every step and reality check: the configuration, the tools bound
for this run (with what they have read so far, see tasks/core/tools.py) and the state directory.
Made once per run, by doit's glue (tasks/graph.py) or invoke's (tasks/inv/common.py)."""
from __future__ import annotations

import copy
from pathlib import Path

from tasks.core import state
from tasks.core.tools import Tools


class Lab(Tools):
    def __init__(self, cfg, *, echo: bool = True, state_dir: Path | None = None):
        super().__init__(cfg, echo=echo)
        self.state = state_dir or state.path("")

    def replace(self, **settings: str) -> "Lab":
        """The same run with these settings changed (same tools, same reads)."""
        other = copy.copy(self)
        other.cfg = self.cfg.replace(**settings)
        return other
