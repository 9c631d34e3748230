#!/bin/bash
# crm-local stand-in for docker-daemon.sh and docker-websocket.sh
# (espocrm/espocrm-docker@c748146 lines 3, 14-23, 133-136): exit 0 until
# app-check passes (the pod restarts it), then the ESPOCRM_CONFIG_*
# parameters, then the daemon (or, as docker-websocket.sh, the websocket
# server on 8080).
set -euo pipefail
cd "${ESPOCRM_ROOT:-/var/www/html}"
bin/command app-check >/dev/null 2>&1 || { echo "Waiting for the main container to be ready..." >&2; exit 0; }
compgen -v | while read -r name; do
	[[ $name == ESPOCRM_CONFIG_* ]] || continue
	bin/command config:set "$(bin/command normalize-name "$name")" "${!name}" --type=auto
done
echo "espocrm stand-in: $(basename "$0") running, siteUrl $(bin/command config:get siteUrl)"
if [ "$(basename "$0")" = docker-websocket.sh ]; then
	CRM_STANDIN_PORT=8080 exec /usr/local/bin/crm-standin
fi
while true; do sleep 60; done
