#!/usr/bin/env bash
# `make run`: starts etcd + kube-apiserver on loopback with the CRDs installed,
# then the manager against it, both in the background, logging to bin/local/.
# Idempotent: what already runs is left alone. `make down` stops both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
K8S_VERSION=${K8S_VERSION:-1.37.2}
dir=$root/bin/local
kubeconfig=$dir/kubeconfig
mkdir -p "$dir"
t0=$SECONDS
step() { printf '[run %3ds] %s\n' "$((SECONDS - t0))" "$*"; }

alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

if alive localcluster && [ -f "$kubeconfig" ]; then
	step "control plane: already running (pid $(cat "$dir/localcluster.pid"))"
else
	step "control plane: starting etcd + kube-apiserver v$K8S_VERSION on loopback"
	rm -f "$kubeconfig"
	go build -o "$root/bin/localcluster" ./hack/localcluster
	nohup "$root/bin/localcluster" --write-kubeconfig "$kubeconfig" --crds config/crd/bases \
		--assets "$root/bin/k8s/$K8S_VERSION" >"$dir/localcluster.log" 2>&1 &
	echo $! >"$dir/localcluster.pid"
	for _ in $(seq 1 120); do
		[ -f "$kubeconfig" ] && break
		alive localcluster || { cat "$dir/localcluster.log"; echo "control plane failed to start"; exit 1; }
		sleep 0.5
	done
	[ -f "$kubeconfig" ] || { echo "control plane did not come up in 60s; see $dir/localcluster.log"; exit 1; }
	step "control plane: $(tail -n 1 "$dir/localcluster.log")"
fi

# The CRDs may be newer than the running control plane's: apply them again.
kubectl --kubeconfig "$kubeconfig" apply --server-side --force-conflicts -f config/crd/bases >/dev/null
step "CRDs: applied ($(kubectl --kubeconfig "$kubeconfig" get crd -o name | grep -c crmops.io) crm.crmops.io kinds)"
kubectl --kubeconfig "$kubeconfig" apply --server-side --force-conflicts -f config/admission/increment_acceptance.yaml -f config/admission/production_version.yaml -f config/admission/gdpr_environment.yaml >/dev/null
step "admission policies: applied (product-owner acceptance, production versions, GDPR)"

if alive manager; then
	step "manager: already running (pid $(cat "$dir/manager.pid"))"
else
	KUBECONFIG=$kubeconfig nohup "$root/bin/manager" --metrics-bind-address=127.0.0.1:18080 \
		--health-probe-bind-address=127.0.0.1:18081 >"$dir/manager.log" 2>&1 &
	echo $! >"$dir/manager.pid"
	for _ in $(seq 1 60); do
		curl -fsS http://127.0.0.1:18081/readyz >/dev/null 2>&1 && break
		alive manager || { cat "$dir/manager.log"; echo "manager failed to start"; exit 1; }
		sleep 0.5
	done
	step "manager: running (pid $(cat "$dir/manager.pid")), log: $dir/manager.log"
fi

cat <<MSG

The control plane and the operator are running. Try:

  export KUBECONFIG=$kubeconfig
  kubectl apply -f config/samples/crm_v1alpha1_implementationproject.yaml
  kubectl wait --for=jsonpath='{.status.namespace}'=acme implementationproject/acme
  kubectl apply -f config/samples/crm_v1alpha1_environment_test.yaml
  kubectl get crm -A
  kubectl explain implementationproject.spec.gdpr

Stop everything with: make down
MSG
