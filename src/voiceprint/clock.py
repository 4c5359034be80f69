"""The one clock for stored timestamps: whole Unix seconds, as the Coze API reports them."""

from __future__ import annotations

import time


def now() -> int:
    return int(time.time())
