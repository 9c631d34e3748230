#!/usr/bin/env bash
# `make run`: the whole product on this machine, in one command.
#
# Builds what it needs (cached after the first time), starts a simulated
# cluster on loopback (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kwok with nodes in eu-central-1 and us-east-1), installs the
# CRDs and admission policies, starts the operator, applies the demo project
# (EspoCRM, EU-only GDPR policy, test + production, one increment) and shows
# it converging until the increment is verified on test. Idempotent: what
# already runs is left alone. `make down` stops everything by PID.
#
#   DEMO=0 make run       cluster and operator only
#   OPERATOR=0            no operator either (make test-faults runs its own replicas)
#   DEMO_TIMEOUT=600      seconds to wait for the demo (default 300)
#   MANAGER_ARGS          extra flags of the operator (make bench: --sync-period)
#   CLUSTER_QPS=200       client QPS of the simulated cluster's controller
#                         manager, scheduler and volume provisioner; 0 keeps
#                         their defaults (make bench measures both)
#   MANAGER_BUILD_TAGS    build tags of the operator (make bench: bench, the
#                         flags that only measure)
#   MANAGER_GOMEMLIMIT    the operator's soft memory limit (GOMEMLIMIT, as the
#                         Helm chart sets it from the container's limit)
#   REAL_NODE=1           also one real node (containerd, kubelet, kube-proxy,
#                         CoreDNS, a local registry: hack/real-node-up.sh);
#                         the operator's pods run there, on locally built
#                         images (stand-ins where the official ones cannot
#                         be pulled: docs/contributing/real-node.md)
#   PORTAL=0              no product owner's portal and no OpenID provider
#                         (default: with the demo)
#   LOCAL_DIR, METRICS_PORT, PROBE_PORT, WEBHOOK_PORT   where state and logs go
#                         (bin/local) and the operator's ports (18080, 18081,
#                         19443): the e2e test runs its own cluster beside yours
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
K8S_VERSION=${K8S_VERSION:-1.37.2}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
# The demo is EspoCRM, whose official images a real node cannot pull here:
# with REAL_NODE=1 it is off unless asked for.
if [ "${REAL_NODE:-0}" = 1 ]; then DEMO=${DEMO:-0}; else DEMO=${DEMO:-1}; fi
DEMO_TIMEOUT=${DEMO_TIMEOUT:-300}
dir=${LOCAL_DIR:-$root/bin/local}
METRICS_PORT=${METRICS_PORT:-18080}
PROBE_PORT=${PROBE_PORT:-18081}
WEBHOOK_PORT=${WEBHOOK_PORT:-19443}
# The portal and the OpenID provider it signs in at (hack/dev-idp), on ports
# derived from the operator's so that the e2e test's cluster runs beside yours.
PORTAL=${PORTAL:-$DEMO}
PORTAL_PORT=${PORTAL_PORT:-$((METRICS_PORT + 10))}
IDP_PORT=${IDP_PORT:-$((PROBE_PORT + 363))}
kubeconfig=$dir/kubeconfig
kubectl=$root/bin/k8s/$K8S_VERSION/kubectl
mkdir -p "$dir"
# make down ends this script first, so that it starts nothing after down.
echo $$ >"$dir/up.pid"
trap 'rm -f "$dir/up.pid"' EXIT
t0=$SECONDS
step() { printf '[run %3ds] %s\n' "$((SECONDS - t0))" "$*"; }
alive() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }
k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

step "tools: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok (built once per machine, then cached)"
hack/build-tools.sh etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok 2>&1 | sed 's/^/          /'
step "binaries: manager, kubectl-crm, localcluster$([ "$PORTAL" = 1 ] && echo ", crm-portal, dev-idp") (side by side)"
export GOFLAGS=${GOFLAGS:--buildvcs=false}
builds=()
go build ${MANAGER_BUILD_TAGS:+-tags "$MANAGER_BUILD_TAGS"} -o bin/manager ./cmd/manager & builds+=($!)
go build -o bin/kubectl-crm ./cmd/kubectl-crm & builds+=($!)
go build -o bin/localcluster ./hack/localcluster & builds+=($!)
if [ "$PORTAL" = 1 ]; then
	go build -o bin/crm-portal ./cmd/portal & builds+=($!)
	go build -o bin/dev-idp ./hack/dev-idp & builds+=($!)
fi
for b in "${builds[@]}"; do wait "$b" || { echo "a build failed (above)"; exit 1; }; done

# The OpenID provider first: the API server is started trusting it.
authn=()
if [ "$PORTAL" = 1 ]; then
	if ! alive dev-idp; then
		nohup "$root/bin/dev-idp" --listen "127.0.0.1:$IDP_PORT" --dir "$dir/idp" \
			--redirect-url "http://127.0.0.1:$PORTAL_PORT/callback" --user jane.po@kunde.example --user ci@integrator.example \
			>"$dir/dev-idp.log" 2>&1 &
		echo $! >"$dir/dev-idp.pid"
		for _ in $(seq 1 40); do
			[ -f "$dir/idp/tls.crt" ] && curl -fsS --cacert "$dir/idp/tls.crt" "https://127.0.0.1:$IDP_PORT/.well-known/openid-configuration" >/dev/null 2>&1 && break
			alive dev-idp || { cat "$dir/dev-idp.log"; echo "the OpenID provider failed to start"; exit 1; }
			sleep 0.25
		done
	fi
	ca=$(sed 's/^/      /' "$dir/idp/tls.crt")
	cat >"$dir/authentication.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: https://127.0.0.1:$IDP_PORT
    audiences: [crm-portal]
    certificateAuthority: |
$ca
  claimMappings:
    username: {claim: sub, prefix: ""}
EOF
	authn=(--authentication-config "$dir/authentication.yaml")
	step "identity provider: https://127.0.0.1:$IDP_PORT (hack/dev-idp; the API server trusts its ID tokens)"
fi

# kwok's stage files ship in its module; resolve them where Go keeps it.
kwok_dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
stage=$kwok_dir/kustomize/stage
stages=$stage/node/fast/node-initialize.yaml,$stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml
stages+=,$stage/pod/fast/pod-ready.yaml,$stage/pod/fast/pod-delete.yaml
stages+=,$root/hack/local/kwok/job-pod-complete.yaml,$root/hack/local/kwok/agent-complete.yaml
for f in ${stages//,/ }; do
	[ -f "$f" ] || { echo "kwok stage file missing: $f (is the module cache intact?)"; exit 1; }
done

if alive localcluster && [ -f "$kubeconfig" ]; then
	step "cluster: already running (pid $(cat "$dir/localcluster.pid"))"
else
	real=()
	if [ "${REAL_NODE:-0}" = 1 ]; then
		# The API server serves pods at the real node's address (the operator's
		# pods reach it through the kubernetes Service); volumes are directories.
		LOCAL_DIR=$dir hack/real-node-up.sh address
		real=(--real-volumes /var/lib/crm-local/volumes --serve-to-pods 10.250.0.1)
	fi
	step "cluster: starting etcd, kube-apiserver v$K8S_VERSION, kube-controller-manager, kube-scheduler, kwok $KWOK_VERSION on loopback"
	rm -f "$kubeconfig"
	nohup "$root/bin/localcluster" --nodes --write-kubeconfig "$kubeconfig" --crds config/crd/bases \
		--assets "$root/bin/k8s/$K8S_VERSION" --kwok "$root/bin/kwok" --kwok-stages "$stages" --log-dir "$dir" \
		--component-qps "${CLUSTER_QPS:-200}" "${real[@]}" "${authn[@]}" \
		>"$dir/localcluster.log" 2>&1 &
	echo $! >"$dir/localcluster.pid"
	for _ in $(seq 1 120); do
		[ -f "$kubeconfig" ] && break
		alive localcluster || { cat "$dir/localcluster.log"; echo "the cluster failed to start"; exit 1; }
		sleep 0.5
	done
	[ -f "$kubeconfig" ] || { echo "the cluster did not come up in 60s; see $dir/localcluster.log"; exit 1; }
	step "cluster: $(tail -n 1 "$dir/localcluster.log")"
fi
if [ "${REAL_NODE:-0}" = 1 ]; then
	KUBECONFIG=$kubeconfig LOCAL_DIR=$dir hack/real-node-up.sh
fi
k wait --for=condition=Ready node --all --timeout=60s >/dev/null
step "nodes: $(k get nodes -L topology.kubernetes.io/region --no-headers | awk '{printf "%s (%s, %s)  ", $1, $NF, $2}')"

# The CRDs may be newer than the running cluster's: apply them again.
k apply --server-side --force-conflicts -f config/crd/bases >/dev/null
step "CRDs: applied ($(k get crd -o name | grep -c crmops.io) crm.crmops.io kinds)"
if [ "${REAL_NODE:-0}" = 1 ]; then
	if [ "${OPERATOR:-1}" = 0 ]; then
		step "operator: not installed (OPERATOR=0; the caller installs it)"
	else
		LOCAL_DIR=$dir KUBECONFIG=$kubeconfig hack/real-node-operator.sh
	fi
else
	k apply --server-side --force-conflicts -f config/admission/increment_acceptance.yaml \
		-f config/admission/production_version.yaml -f config/admission/production_protection.yaml -f config/admission/gdpr_environment.yaml -f config/admission/data_finalizers.yaml >/dev/null
	step "admission policies: applied (product-owner acceptance, production versions, GDPR, data finalizers)"

	# The reference-checking webhook: the API server calls the operator running
	# here on loopback; the operator creates its certificate in the Secret and
	# injects its CA into this configuration.
	k create namespace crm-system --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
	k create secret generic crm-operator-webhook-tls -n crm-system --dry-run=client -o yaml | k apply --server-side -f - >/dev/null
	sed -e '/^    service:$/d' -e '/^      name: webhook-service$/d' -e '/^      namespace: system$/d' \
		-e "s#^      path: \(.*\)#    url: https://localhost:$WEBHOOK_PORT\1#" \
		-e 's/^  name: validating-webhook-configuration$/  name: crm-operator-references-local/' \
		config/webhook/manifests.yaml | k apply --server-side --force-conflicts -f - >/dev/null
	step "webhook: configured (references checked by the operator at https://localhost:$WEBHOOK_PORT)"

	if [ "${OPERATOR:-1}" = 0 ]; then
		step "operator: not started (OPERATOR=0; the caller runs it)"
	elif alive manager; then
		step "operator: already running (pid $(cat "$dir/manager.pid"))"
	else
		# The simulated nodes are tainted: the operator's pods tolerate it here only.
		KUBECONFIG=$kubeconfig POD_NAMESPACE=crm-system GOMEMLIMIT=${MANAGER_GOMEMLIMIT:-} nohup "$root/bin/manager" --metrics-bind-address=127.0.0.1:$METRICS_PORT \
			--webhook-port="$WEBHOOK_PORT" --webhook-cert-mode=self --webhook-cert-dir="$dir/webhook-certs" \
			--webhook-configuration=crm-operator-references-local --webhook-extra-dns-names=localhost --webhook-write-cert-files \
			--health-probe-bind-address=127.0.0.1:$PROBE_PORT --pod-toleration=kwok.x-k8s.io/node=fake:NoSchedule \
			--agent-image=crm-operator:local ${MANAGER_ARGS:-} >"$dir/manager.log" 2>&1 &
		echo $! >"$dir/manager.pid"
		ready=0
		for _ in $(seq 1 120); do
			curl -fsS http://127.0.0.1:$PROBE_PORT/readyz >/dev/null 2>&1 && { ready=1; break; }
			alive manager || { tail -n 30 "$dir/manager.log"; echo "the operator failed to start"; exit 1; }
			sleep 0.5
		done
		[ $ready = 1 ] || { tail -n 30 "$dir/manager.log"; echo "the operator is not ready after 60s (see $dir/manager.log)"; exit 1; }
		step "operator: running (pid $(cat "$dir/manager.pid")), log: $dir/manager.log, metrics: http://127.0.0.1:$METRICS_PORT/metrics"
	fi
fi

if [ "$DEMO" = 0 ]; then
	printf '\nexport KUBECONFIG=%s\nStop everything with: make down\n' "$kubeconfig"
	exit 0
fi

k apply --server-side -f hack/local/demo-project.yaml >/dev/null
k wait --for=jsonpath='{.status.namespace}'=demo implementationproject/demo --timeout=60s >/dev/null
k apply --server-side -f hack/local/demo-environments.yaml >/dev/null
step "demo: project demo (EspoCRM, EU-only GDPR policy), environments test and production, increment sprint-1"

verified() { [ "$(k get increment sprint-1 -n demo -o jsonpath='{.status.conditions[?(@.type=="Verified")].status}' 2>/dev/null)" = True ]; }
last=""
deadline=$((SECONDS + DEMO_TIMEOUT))
while :; do
	# Verified is read before the table: the last table printed is one
	# read after sprint-1 was verified, so it shows what the message says.
	done=""
	verified && done=1
	table=$("$root/bin/kubectl-crm" --kubeconfig "$kubeconfig" status demo 2>&1 || true)
	if [ "$table" != "$last" ]; then
		step "status:"
		printf '%s\n\n' "$table" | sed 's/^/    /'
		last=$table
	fi
	[ -n "$done" ] && break
	if [ $SECONDS -ge $deadline ]; then
		echo "the demo did not reach Verified on test in ${DEMO_TIMEOUT}s; see $dir/manager.log"
		exit 1
	fi
	sleep 1
done
step "demo: sprint-1 is deployed and verified on test; it awaits the product owner's acceptance"

if [ "$PORTAL" = 1 ] && ! alive portal; then
	# The portal reads with its own ServiceAccount's token (it can change
	# nothing) and sends each decision with the signed-in person's token.
	k apply --server-side -f hack/local/portal-rbac.yaml >/dev/null
	token=$(k create token crm-portal -n crm-system --duration=24h)
	server=$(k config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
	cadata=$(k config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
	(umask 077 && cat >"$dir/portal.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority-data: "$cadata"}}]
users: [{name: crm-portal, user: {token: "$token"}}]
contexts: [{name: portal, context: {cluster: local, user: crm-portal}}]
current-context: portal
EOF
	)
	KUBECONFIG=$dir/portal.kubeconfig PORTAL_CLIENT_SECRET=$(cat "$dir/idp/client-secret") nohup "$root/bin/crm-portal" \
		--listen "127.0.0.1:$PORTAL_PORT" --issuer-url "https://127.0.0.1:$IDP_PORT" --issuer-ca-file "$dir/idp/tls.crt" \
		--redirect-url "http://127.0.0.1:$PORTAL_PORT/callback" --username-claim sub --secure-cookies=false \
		>"$dir/portal.log" 2>&1 &
	echo $! >"$dir/portal.pid"
	for _ in $(seq 1 60); do
		curl -fsS "http://127.0.0.1:$PORTAL_PORT/healthz" >/dev/null 2>&1 && break
		alive portal || { cat "$dir/portal.log"; echo "the portal failed to start"; exit 1; }
		sleep 0.5
	done
	step "portal: http://127.0.0.1:$PORTAL_PORT (log: $dir/portal.log)"
fi

cat <<MSG

The simulated cluster, the operator and the demo are running. Pods run on
simulated kwok nodes (no container runtime): backups and migrations in the
demo are simulated Jobs; crm-agent itself is proven by its own tests.

  export KUBECONFIG=$kubeconfig PATH=$root/bin:\$PATH
  kubectl crm status demo
  kubectl get crm -n demo

Only the customer's product owner may accept the increment; anyone else is
refused by the API:

  kubectl crm accept sprint-1 -n demo --as ci@integrator.example

Accept it as the product owner (the API records who, from the request's
identity); it then goes to production step by step: backup first,
EspoCRM's own upgrade (10.0.3 to 10.1.0) and the sprint's migration,
rollout, health check:

  kubectl crm accept sprint-1 -n demo --as jane.po@kunde.example --wait
  kubectl get job sprint-1-migrate-production -n demo -o jsonpath='{.spec.template.spec.initContainers[*].name}'

Test sends its mail only to its own catcher (Service test-mail):

  kubectl crm mail test -n demo

MSG
if [ "$PORTAL" = 1 ]; then
	cat <<MSG
Or accept it in the product owner's portal: open http://127.0.0.1:$PORTAL_PORT,
sign in as jane.po@kunde.example with the password generated for her on
this machine ($(awk '$1 == "jane.po@kunde.example" {print $2}' "$dir/idp/passwords"); all in $dir/idp/passwords),
open sprint-1 and press Accept: the page follows the promotion to production.

MSG
fi
echo "Stop everything with: make down"
