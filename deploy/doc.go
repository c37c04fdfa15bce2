// Package deploy holds the container files of caddy-cognito (the Dockerfiles'
// default Caddyfile, Caddyfile.env) and the tests that check them without a
// Docker engine: the compose topology (docker-compose.yml at the repository
// root, loaded with compose-spec/compose-go) and the Dockerfiles' exact
// go build commands, run on the host.
//
// It is a Go module of its own (go.mod here), so that compose-go and its
// YAML and Docker libraries stay out of the plugin's module: `xcaddy build
// --with github.com/caddy-cognito/caddy-cognito` does not pull them in. Run
// its tests with `make test` from the repository root, or `go test ./...`
// here.
package deploy
