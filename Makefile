# crm-operator Makefile. `make help` lists the targets.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

K8S_VERSION ?= 1.37.2
BIN := $(CURDIR)/bin
KUBEBUILDER_ASSETS := $(BIN)/k8s/$(K8S_VERSION)
CONTROLLER_GEN := $(BIN)/controller-gen
GO_TEST_FLAGS ?= -count=1
export GOFLAGS ?= -buildvcs=false
# go.mod's toolchain line (a patched Go release, fetched once from the module
# proxy) wins over an older local Go; GOROOT's go.env may say "local".
export GOTOOLCHAIN ?= auto

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: controller-gen ## Generate CRDs and RBAC from the markers.
	$(CONTROLLER_GEN) rbac:roleName=crm-operator-manager crd:allowDangerousTypes=false webhook paths="./api/...;./controllers/...;./internal/webhook/..." \
		output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac output:webhook:artifacts:config=config/webhook
	cp config/webhook/manifests.yaml charts/crm-operator/files/webhook.yaml
	cp config/crd/bases/*.yaml charts/crm-operator/crds/
	cp config/rbac/role.yaml charts/crm-operator/files/role.yaml
	cp config/admission/increment_acceptance.yaml config/admission/production_version.yaml config/admission/production_protection.yaml config/admission/gdpr_environment.yaml config/admission/data_finalizers.yaml charts/crm-operator/files/admission/

.PHONY: generate
generate: controller-gen ## Generate deepcopy code, docs/products.md and docs/reference/api.md (from the CRDs make manifests writes).
	$(CONTROLLER_GEN) object paths="./api/..."
	go run ./hack/productsdoc
	go run ./hack/apidoc

.PHONY: fmt
fmt: ## go fmt.
	go fmt ./...

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: verify-generated
verify-generated: manifests generate ## Fail when generated files differ from the committed ones, or a link of README.md or docs/ is dead.
	@if [ -n "$$(git status --porcelain -- api config charts/crm-operator docs/products.md docs/reference/api.md)" ]; then \
		git status --porcelain -- api config charts/crm-operator docs/products.md docs/reference/api.md; \
		git --no-pager diff --stat -- api config charts/crm-operator docs/products.md docs/reference/api.md; \
		echo "generated files are stale: run 'make manifests generate' and commit"; exit 1; fi
	go test $(GO_TEST_FLAGS) ./test/docs/

.PHONY: test
test: manifests generate vet envtest-bins test-servers test-prerequisites ## Unit tests, envtest suites on a real kube-apiserver + etcd, agent tests on real PostgreSQL, MariaDB and S3, the portal in Chromium; the last line counts the tests run and skipped.
	@hack/build-tools.sh gotestsum
	KUBEBUILDER_ASSETS=$(KUBEBUILDER_ASSETS) $(BIN)/gotestsum --format pkgname-and-test-fails --format-hide-empty-pkg -- $(GO_TEST_FLAGS) ./...

.PHONY: test-prerequisites
test-prerequisites: ## Install the Debian packages make test needs (PostgreSQL, MariaDB, Chromium) when missing, or name the command (SKIP_DATABASES=1, SKIP_BROWSER=1 skip their tests).
	@hack/test-prerequisites.sh

.PHONY: build
build: generate ## Build the manager, crm-agent, kubectl-crm and portal binaries.
	go build -o $(BIN)/manager ./cmd/manager
	go build -o $(BIN)/crm-agent ./cmd/crm-agent
	go build -o $(BIN)/kubectl-crm ./cmd/kubectl-crm
	go build -o $(BIN)/crm-portal ./cmd/portal

.PHONY: install-plugin
install-plugin: ## Install kubectl-crm into GOBIN (or ~/go/bin), so that `kubectl crm` finds it on the PATH.
	go install ./cmd/kubectl-crm
	@gobin=$$(go env GOBIN); echo "installed $${gobin:-$$(go env GOPATH)/bin}/kubectl-crm; with that directory on the PATH: kubectl crm --help"

.PHONY: bench
bench: manifests ## Operator vs plain client vs helm loop on the simulated cluster (BENCH_N="100 300 1000" for growth); bin/bench/results.json.
	hack/bench.sh

.PHONY: bench-agent
bench-agent: test-servers ## Agent backup throughput vs pg_dump | gzip (BENCH_AGENT_MB, default 300).
	go test -run '^$$' -bench BackupVsPgDumpGzip -benchtime 1x ./internal/agent/

##@ Local simulated cluster

.PHONY: run
run: manifests ## The whole product locally: simulated cluster (kwok), CRDs, policies, the operator and a demo project.
	hack/local-up.sh

.PHONY: test-e2e
test-e2e: ## End-to-end: `make run` from scratch, accept and promote with kubectl crm and in the portal (Chromium), the plugin's commands, `make down` leaves nothing.
	go test -tags e2e $(GO_TEST_FLAGS) -timeout 20m -v ./test/e2e/

.PHONY: test-faults
test-faults: ## Faults on the simulated cluster: manager SIGKILLs in 30 promotions, API server/etcd restarts, leader failover, conflict storm, hostile input (FAULTS_SEED).
	go test -tags faults $(GO_TEST_FLAGS) -timeout 20m -v ./test/faults/

.PHONY: test-real
test-real: test-servers real-node-prerequisites ## Real pods (root): REAL_NODE=1 make run, the chart's operator on a real node; backups to a real S3 server, hibernation, retained volumes, checked against real rows; make down leaves the machine as it was.
	go test -tags real $(GO_TEST_FLAGS) -timeout 30m -v ./test/real/

.PHONY: real-node-prerequisites
real-node-prerequisites: ## Build what the real node needs (Debian packages, tools, images), with progress lines; make test-real runs it before its test starts.
	@hack/real-node-up.sh prepare

.PHONY: down
down: ## Stop everything `make run` started.
	hack/local-down.sh

##@ Tools (built from the Go module proxy, cached in ~/.cache/crm-operator)

.PHONY: controller-gen
controller-gen: ## Build controller-gen.
	@hack/build-tools.sh controller-gen

.PHONY: fuzz
fuzz: ## Every fuzz target for FUZZ_TIME (default 30s) each; FUZZ_SAVE=1 keeps new corpus entries in testdata/fuzz.
	@hack/fuzz.sh

.PHONY: lint
lint: ## golangci-lint v2 (staticcheck, gosec, ...; .golangci.yml).
	@hack/build-tools.sh golangci-lint
	$(BIN)/golangci-lint run --build-tags e2e,faults,bench,real ./...

.PHONY: vulncheck
vulncheck: ## govulncheck against a local copy of the Go vulnerability database (golang.org/x/vulndb).
	@hack/vulncheck.sh

.PHONY: test-servers
test-servers: ## Build versitygw (the S3 server of the agent's tests), helm (the chart's tests) and mailpit (the portal's mail tests).
	@hack/build-tools.sh versitygw helm mailpit

.PHONY: envtest-bins
envtest-bins: ## Build kube-apiserver, etcd and kubectl for envtest.
	@hack/build-tools.sh etcd kube-apiserver kubectl
