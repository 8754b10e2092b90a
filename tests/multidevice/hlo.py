"""Reading the collectives of a compiled program's HLO text, for the multi-device tests."""

import re

import numpy as np

# "%x = f32[32]{0} all-reduce(...)" or a tuple "(f32[32]{0}, f32[32,24]{1,0}) all-reduce(...)",
# and the asynchronous "-start" forms.
_COLLECTIVE = re.compile(
    r"=\s*\(?([a-z0-9\[\]{},\s/*=]*?)\)?\s+(all-reduce|all-gather|all-to-all|"
    r"collective-permute|reduce-scatter)(-start)?\("
)


def collectives(hlo_text):
    """``(op, [element counts of its results], line)`` for every collective in HLO text."""
    found = []
    for line in hlo_text.splitlines():
        match = _COLLECTIVE.search(line)
        if match:
            shapes = re.findall(r"[a-z0-9]+\[([0-9,]*)\]", match.group(1))
            sizes = [int(np.prod([int(d) for d in s.split(",") if d])) for s in shapes]
            found.append((match.group(2), sizes, line))
    return found
