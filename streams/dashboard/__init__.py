"""``prodromal dashboard``: cohort overview and participant view in a local web page.

Data come from a replay's run folder (:class:`RunSource`, the embedded default) or from InfluxDB
(:class:`InfluxSource`, InfluxQL over HTTP); :class:`DashboardServer` serves them with the static
page in ``streams/web/``.
"""

from streams.dashboard.data import DataError, InfluxSource, RunSource
from streams.dashboard.server import AccessError, DashboardServer, is_loopback

__all__ = ["RunSource", "InfluxSource", "DataError", "DashboardServer", "AccessError", "is_loopback"]
