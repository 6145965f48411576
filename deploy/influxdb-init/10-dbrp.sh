#!/bin/bash
# Runs once when the InfluxDB 2 container is first set up: map the InfluxQL database
# ${PRODROMAL_INFLUX_DB} (used by Grafana's InfluxQL datasource) onto the bucket.
set -euo pipefail
BUCKET_ID=$(influx bucket list --name "${DOCKER_INFLUXDB_INIT_BUCKET}" --hide-headers | awk '{print $1}')
influx v1 dbrp create --bucket-id "${BUCKET_ID}" --db "${PRODROMAL_INFLUX_DB:-prodromal}" --rp autogen --default
