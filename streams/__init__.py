"""prodromal.streams: data in motion and every I/O edge (cohorts, importers, drivers, sinks, CLI)."""
