package authz_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/caddy-cognito/caddy-cognito/authz"
	"github.com/caddy-cognito/caddy-cognito/authz/jwks"
	"github.com/caddy-cognito/caddy-cognito/config"
)

// The engine without Caddy: a keyring over a JWKS file, an Authorizer for
// one route's rule, and the answer for a request.
func Example() {
	ring := jwks.NewKeyring(&jwks.FileSource{Path: "testdata/example-jwks.json"}, jwks.Options{})
	ring.Start()
	defer ring.Stop()
	<-ring.Attempted()

	a, err := authz.New(config.Authorizer{
		UserPool: "us-west-2_NMATFlcVJ",
		Audience: []string{"6vo4qadm0jp3e8kkk0c2d2l8im"},
		Scopes:   []string{"order/post.order"},
	}, ring)
	if err != nil {
		panic(err)
	}

	r := httptest.NewRequest("POST", "/api/v1/order", nil)
	r.Header.Set("Authorization", "Bearer not-a-token")
	tok, xerr := authz.ExtractToken(r, config.TokenSource{From: "header", Name: "Authorization"})
	if xerr != nil {
		panic(xerr)
	}
	_, err = a.Authorize(context.Background(), tok)
	e := authz.AsError(err)
	fmt.Println(e.Kind.Status())
	fmt.Println(e.Challenge(a.Scopes()))
	fmt.Println(e.Body())
	// Output:
	// 401
	// Bearer error="invalid_token", error_description="token contains an invalid number of segments"
	// {"message":"Unauthorized"}
}
