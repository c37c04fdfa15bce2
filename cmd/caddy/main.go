// Command caddy is Caddy with the standard modules and caddy-cognito's
// cognito_auth handler built in. Users of xcaddy get the same with
// `xcaddy build --with github.com/caddy-cognito/caddy-cognito`.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-cognito/caddy-cognito/caddymodule"
)

func main() {
	caddycmd.Main()
}
