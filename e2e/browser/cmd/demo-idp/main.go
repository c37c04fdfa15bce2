// Command demo-idp runs the OpenID provider of the browser sign-in tests
// for `make demo`: a login page for alice and bob, Cognito-shaped tokens,
// and one web client whose callback and sign-out URLs it is given.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/caddy-cognito/caddy-cognito/e2e/browser/idp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	clientID := flag.String("client-id", "demo-web", "the web client's id")
	secretEnv := flag.String("client-secret-env", "DEMO_WEB_SECRET", "environment variable holding the client secret")
	site := flag.String("site", "", "the protected site's base URL, e.g. http://localhost:8080 (callback and sign-out URLs are under it)")
	flag.Parse()
	secret := os.Getenv(*secretEnv)
	if *site == "" || secret == "" {
		log.Fatalf("demo-idp: -site and $%s are required", *secretEnv)
	}
	p, err := idp.Start(*listen)
	if err != nil {
		log.Fatal(err)
	}
	p.AddClient(&idp.Client{
		ID: *clientID, Secret: secret, Method: oidc.AuthMethodBasic,
		Redirects:  []string{*site + "/oauth2/idpresponse"},
		LogoutURIs: []string{*site + "/signed-out"},
	})
	fmt.Println(p.Issuer)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	_ = p.Close()
}
