// Package caddycognito registers the cognito_auth Caddy module, so that
// `xcaddy build --with github.com/caddy-cognito/caddy-cognito` builds a
// Caddy with it. The code lives in caddymodule (Caddy glue), authz (the
// engine) and config (the configuration model).
package caddycognito

import (
	_ "github.com/caddy-cognito/caddy-cognito/caddymodule"
)
