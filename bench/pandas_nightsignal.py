"""A straightforward pandas implementation of the NightSignal pipeline: the peer bench/replay.py measures against.

What a data scientist would write from the paper: load HR and steps, resample to
minutes, keep 00:00-06:59 minutes with zero steps, one integer mean per night,
fill single missing nights, expanding integer median, two-consecutive-night rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def nightsignal_pandas(hr: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """hr: columns datetime, heartrate; steps: datetime, steps. Returns nights with A, M, level."""
    hr = hr.set_index("datetime")["heartrate"].resample("1min").mean()
    st = steps.set_index("datetime")["steps"].resample("1min").sum(min_count=1)
    df = pd.concat([hr.rename("hr"), st.rename("steps")], axis=1, join="inner").dropna()
    night = df[(df.index.hour < 7) & (df["steps"] == 0)]
    a = night["hr"].groupby(night.index.normalize()).mean().astype(int)
    a = a.asfreq("D")
    single = a.isna() & a.shift(1).notna() & a.shift(-1).notna()
    a[single] = ((a.shift(1) + a.shift(-1)) / 2)[single].astype(int)
    a = a.dropna().astype(int)
    m = a.expanding().median().astype(int)
    e = np.where(a >= m + 4, 2, np.where(a >= m + 3, 1, 0))
    prev = np.concatenate([[0], e[:-1]])
    level = np.where((e == 2) & (prev == 2), 2, np.where((e >= 1) & (prev >= 1), 1, 0))
    return pd.DataFrame({"A": a, "M": m, "level": level})


def read_fitbit_pandas(path) -> pd.DataFrame:
    df = pd.read_csv(path, index_col=0)
    df["datetime"] = pd.to_datetime(df["datetime"], format="%Y-%m-%d %H:%M:%S")
    return df
