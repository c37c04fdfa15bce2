.PHONY: demo

# One-command demo: cognito-local -> caddy with cognito_auth -> sample backend.
# DEMO_NONINTERACTIVE=1 runs the checks and exits (for CI).
demo:
	bash scripts/demo.sh

# The Go modules of the repository: the directory of every go.mod git knows
# (tracked, or new and not ignored), outside node_modules and testdata. The
# root module is the plugin (what xcaddy and `go install` take); the others
# keep their dependencies out of it (the Lambda: aws-lambda-go; the deploy
# tests: compose-go). A new module is found without editing this file.
MODULES := $(sort $(patsubst %/,%,$(dir $(shell git ls-files -co --exclude-standard -- go.mod '*/go.mod' | grep -v -e node_modules/ -e testdata/))))

# Each module is built and tested against its own go.mod and go.sum, as users
# and CI get them, even when a go.work (`make work`, not committed) is present.
# `make test GOWORK=$$PWD/go.work` runs the same in workspace mode.
GOWORK ?= off
export GOWORK

.PHONY: modules
modules:
	@echo $(MODULES)

.PHONY: test
# The test command (README "Tests"; .ci/run runs exactly this): formatting,
# then for every module vet, build, and every test with the race detector,
# including the integration suite (a real Caddy), the e2e suite
# (cognito-local, needs node) and the xcaddy-style build of the plugin.
# Every module is tested even when an earlier one fails; the failures are
# listed at the end.
test:
	@test -z "$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files -co --exclude-standard '*.go'); exit 1; }
	@# go build -o /dev/null: a module that is one main package (the Lambda)
	@# would otherwise get its binary written into the source tree.
	@set -e; for m in $(MODULES); do echo "== go vet, go build: module $$m"; (cd $$m && go vet ./... && go build -o /dev/null ./...); done
	@failed=; for m in $(MODULES); do \
		echo "== go test: module $$m"; \
		(cd $$m && go test -race -count=1 -timeout 30m ./...) || failed="$$failed $$m"; \
	done; \
	test -z "$$failed" || { echo "FAIL: tests failed in module(s):$$failed"; exit 1; }

.PHONY: lint
# staticcheck over every module (.ci/run installs the pinned version).
lint:
	@set -e; for m in $(MODULES); do echo "== staticcheck: module $$m"; (cd $$m && staticcheck ./...); done

.PHONY: tidy
# go mod tidy in every module.
tidy:
	@set -e; for m in $(MODULES); do echo "== go mod tidy: module $$m"; (cd $$m && go mod tidy); done

.PHONY: work
# A go.work over every module, for editors and gopls (go.work is not
# committed: xcaddy and `go install` ignore it, and the tests run each module
# as published).
work:
	rm -f go.work go.work.sum
	GOWORK= go work init $(MODULES)
