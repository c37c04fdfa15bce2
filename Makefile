.PHONY: demo

# One-command demo: cognito-local -> caddy with cognito_auth -> sample backend.
# DEMO_NONINTERACTIVE=1 runs the checks and exits (for CI).
demo:
	bash scripts/demo.sh

.PHONY: test
# The test command (README "Tests"; .ci/run runs exactly this): formatting,
# vet, and every test with the race detector, including the integration
# suite (a real Caddy) and the e2e suite (cognito-local, needs node).
test:
	@test -z "$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files -co --exclude-standard '*.go'); exit 1; }
	go vet ./...
	go build ./...
	go test -race -count=1 -timeout 30m ./...
