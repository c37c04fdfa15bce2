// Package deploy holds the container files of caddy-cognito (the Dockerfiles'
// default Caddyfile, Caddyfile.env) and the tests that check them without a
// Docker engine: the compose topology (docker-compose.yml at the repository
// root, loaded with compose-spec/compose-go) and the Dockerfiles' exact
// go build commands, run on the host.
package deploy
