#!/bin/bash
# crm-local stand-in for Bitnami's suitecrm/run.sh: no cron as non-root,
# then Apache (crm-standin) on APACHE_HTTP_PORT_NUMBER.
set -euo pipefail
[ "$(id -u)" = 0 ] || echo "suitecrm stand-in: Cron will not be started because of running as a non-root user"
echo "suitecrm stand-in: serving SuiteCRM $SUITECRM_STANDIN_VERSION"
CRM_STANDIN_PORT=${APACHE_HTTP_PORT_NUMBER:-8080} exec /usr/local/bin/crm-standin
