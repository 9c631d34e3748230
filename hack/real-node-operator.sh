#!/usr/bin/env bash
# REAL_NODE=1 make run: installs the operator into the local cluster with its
# Helm chart, on the real node, from the locally built image
# (hack/real-node-images.sh): two replicas with leader election, the webhook
# through its Service, metrics over HTTPS, the admission policies, the
# generated RBAC. The pods it creates tolerate the real node's taint and pull
# the locally built database, Redis, mail and product stand-in images (image overrides, as on an
# air-gapped cluster); `helm upgrade --install`, so running it again updates.
#
#   KUBECONFIG, LOCAL_DIR   as for hack/real-node-up.sh
#   HELM_ARGS               more arguments of helm (--set ...)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=${K8S_VERSION:-1.37.2}
dir=${LOCAL_DIR:-$root/bin/local}/real-node
kubectl=$root/bin/k8s/$K8S_VERSION/kubectl
t0=$SECONDS
step() { printf '[operator %3ds] %s\n' "$((SECONDS - t0))" "$*"; }
image() {
	local ref
	ref=$(sed -n "s/^$1=//p" "$dir/images")
	[ -n "$ref" ] || { echo "no $1 image in $dir/images: run hack/real-node-up.sh" >&2; exit 1; }
	echo "$ref"
}
# The repository of an image: the version is the tag the operator appends.
repository() { local ref; ref=$(image "$1") && echo "${ref%:*}"; }
"$root/hack/build-tools.sh" helm 2>&1 | sed 's/^/          /'
operator=$(image crm-operator)
taint=crm.crmops.io/real-node
# shellcheck disable=SC2086
"$root/bin/helm" upgrade --install crm-operator "$root/charts/crm-operator" --namespace crm-system --create-namespace \
	--set image.repository="${operator%:*}" --set image.tag="${operator##*:}" \
	--set "tolerations[0].key=$taint" --set "tolerations[0].operator=Exists" --set "tolerations[0].effect=NoSchedule" \
	--set "manager.podTolerations[0]=$taint=true:NoSchedule" --set manager.agentImageVolume=true \
	--set images.overrides.postgresql="$(image postgres)" --set images.overrides.mariadb="$(image mariadb)" \
	--set images.overrides.mail="$(image mailpit)" --set images.overrides.odoo="$(repository odoo)" \
	--set images.overrides.espocrm="$(repository espocrm)" --set images.overrides.suitecrm="$(repository suitecrm)" \
	--set images.overrides.twenty="$(repository twenty)" --set images.overrides.redis="$(repository redis)" \
	${HELM_ARGS:-} >/dev/null
"$kubectl" rollout status deployment/crm-operator -n crm-system --timeout=180s >/dev/null
step "operator: installed by helm ($operator), $("$kubectl" get deployment crm-operator -n crm-system -o jsonpath='{.status.readyReplicas}') replicas ready on the real node"
