"""`export --format c`, between reading and writing: a chain of per-channel steps (the BatchNorm that pooling
keeps out of the convolution: SUB, MUL, MUL, ADD) on a large activation becomes one table per channel, worked
out here with the same integer arithmetic: its output depends only on the int8 input and the channel. 256 bytes
per channel of flash buy one lookup per value in place of six fixed-point multiplications."""

from __future__ import annotations

import numpy as np

from digitsum_edge.export.c_graph import Step
from digitsum_edge.export.fixedpoint import mbqm, wrap32

TABLE_MIN_PIXELS = 128  # fold when each channel has at least this many values (a table is 256 entries)


def channel_op(p: dict, x: int, channel: int) -> int:
    """One per-channel step on one int8 value, as ds_channel computes it."""
    v, f = x + p["in_off"], int(p["factor"][channel])
    if p["op"] == 0:
        r = mbqm(wrap32(v * f), p["m_out"], p["s_out"])
    else:
        a = mbqm(wrap32(v * (1 << 20)), p["m_in"], p["s_in"])
        r = mbqm(wrap32(a + f if p["op"] == 1 else a - f), p["m_out"], p["s_out"])
    return min(max(r + p["out_off"], p["act_min"]), p["act_max"])


def fold_tables(steps: list[Step]) -> list[Step]:
    """Chains of channel steps over at least TABLE_MIN_PIXELS pixels -> one `table` step each."""
    readers: dict[int, int] = {}
    for s in steps:
        for t in (s.src, s.src2):
            readers[t] = readers.get(t, 0) + 1
    folded: list[Step] = []
    i = 0
    while i < len(steps):
        chain = [steps[i]]
        while (chain[-1].kind == "channel" and i + len(chain) < len(steps)
               and steps[i + len(chain)].kind == "channel" and steps[i + len(chain)].src == chain[-1].dst
               and readers.get(chain[-1].dst) == 1):
            chain.append(steps[i + len(chain)])
        first = chain[0]
        if first.kind != "channel" or first.p["n"] < TABLE_MIN_PIXELS:
            folded.append(first)
            i += 1
            continue
        n, c = first.p["n"], first.p["c"]
        table = np.zeros((c, 256), np.int8)
        for channel in range(c):
            for x in range(-128, 128):
                y = x
                for step in chain:
                    y = channel_op(step.p, y, channel)
                table[channel, x + 128] = y
        folded.append(Step("table", first.src, chain[-1].dst, {"n": n, "c": c, "table": table}, layer=first.layer))
        i += len(chain)
    return folded
