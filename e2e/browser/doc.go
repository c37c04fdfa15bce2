// Package browser holds the browser sign-in end-to-end tests of
// caddy-cognito: a real OpenID provider (zitadel/oidc's op package, its
// example storage and login page, shaped to issue Cognito-like tokens), the
// cognito_auth handler with a login block in an in-process Caddy, and a real
// headless Chromium driven with chromedp.
//
// It is its own Go module so that chromedp and the provider library never
// become dependencies of the plugin (what `xcaddy build --with` pulls).
package browser
