SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The local PostgreSQL role is named after the OS user (scripts/datastores.sh creates it).
PG_USER := $(shell id -un)

# The local datastores, each used only when not already set in the environment. The tests'
# are exported to every recipe; pulse dev's only to `run`, so that they never leak into tests of
# the configuration.
export TEST_DATABASE_URL ?= postgres://$(PG_USER)@127.0.0.1:5432/test?sslmode=disable
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
PULSE_DATABASE_URL ?= postgres://$(PG_USER)@127.0.0.1:5432/pulse?sslmode=disable
PULSE_REDIS_URL ?= redis://127.0.0.1:6379/0

# Validates the Knative manifests with Knative's own types, in a module of its own.
VALIDATE_MODULE := config/validate

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

.PHONY: datastores
datastores: ## Install (as root), start and prepare the local PostgreSQL and Redis.
	@bash scripts/datastores.sh

.PHONY: test
test: datastores ## Vet, check formatting and run every test against the local datastores.
	go vet ./...
	@$(MAKE) --no-print-directory fmt-check
	@$(MAKE) --no-print-directory tidy-check
	go test -race -count=1 -timeout 30m ./...
	@if [ -f $(VALIDATE_MODULE)/go.mod ]; then \
		echo "cd $(VALIDATE_MODULE) && go vet ./... && go test -count=1 -timeout 30m ./..."; \
		cd $(VALIDATE_MODULE) && go vet ./... && go test -count=1 -timeout 30m ./...; \
	fi

.PHONY: cluster-check
cluster-check: ## Apply config/ to a real kube-apiserver with Knative's webhooks and controllers (root; opt-in).
	bash scripts/cluster-check.sh

.PHONY: fmt-check
fmt-check: ## Fail, listing them, when Go files are not gofmt-formatted.
	@unformatted=$$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' \
		-not -path '*/vendor/*' -print0 | xargs -0 -r gofmt -l); \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run 'make fmt'):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi

.PHONY: tidy-check
tidy-check: ## Fail, with the diff, when go.mod or go.sum of the root or validate module is not tidy.
	go mod tidy -diff
	@if [ -f $(VALIDATE_MODULE)/go.mod ]; then \
		echo "cd $(VALIDATE_MODULE) && go mod tidy -diff"; \
		cd $(VALIDATE_MODULE) && go mod tidy -diff; \
	fi

.PHONY: run
run: export PULSE_DATABASE_URL := $(PULSE_DATABASE_URL)
run: export PULSE_REDIS_URL := $(PULSE_REDIS_URL)
run: datastores ## Run the whole pipeline locally (pulse dev) against the local datastores.
	go run ./cmd/pulse dev

.PHONY: dashboard
dashboard: ## Write the Grafana dashboard of config/monitoring to pulse.json, for a manual import.
	go run ./internal/extractmonitoring dashboard > pulse.json

.PHONY: prometheus-rules
prometheus-rules: ## Write the alert rules as a plain Prometheus rule file, pulse-rules.yml.
	go run ./internal/extractmonitoring rules > pulse-rules.yml

.PHONY: build
build: ## Build every package.
	go build ./...

.PHONY: fmt
fmt: ## Format every Go file with gofmt.
	find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path '*/vendor/*' \
		-print0 | xargs -0 -r gofmt -w

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: bench
bench: datastores ## Run bench/ and write bench/REPORT.md (BENCH_FLAGS=-quick for a short run).
	go run ./bench $(BENCH_FLAGS)

.PHONY: clean
clean: ## Remove build and test output.
	go clean ./...
	go clean -testcache
	rm -f coverage.out cpu.prof mem.prof pulse.json pulse-rules.yml
