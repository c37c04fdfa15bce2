package caddymodule_test

// The corpus sections about what the backend believes (issue 9): a client
// with a valid token must not be able to make the proxy drop, add or change
// an identity header, whichever way it tries — hop-by-hop Connection
// tokens, placeholders of absent claims, error routes that proxy, cookie
// spellings the credential stripping could miss, trailers, and claim values
// with edge whitespace. Every row runs through the real Caddy of
// TestAttackCorpus, with reverse_proxy in front of a backend that records
// headers, cookies, query, body and trailers.

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func identityAttackCases() []attackCase {
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	// verified checks that the backend got exactly the verified identity
	// of the default token: the six X-Cognito-* headers and the configured
	// X-User-Email, each once.
	verified := func(t *testing.T, _ *attackFixture, got http.Header) {
		t.Helper()
		for name, want := range map[string]string{
			"X-Cognito-Sub": attackSub, "X-Cognito-Username": "alice", "X-Cognito-Client-Id": testClient,
			"X-Cognito-Token-Use": "access", "X-Cognito-Scope": "order/get.order openid", "X-Cognito-Groups": "admin,users",
			"X-User-Email": "alice@example.com",
		} {
			if v := got.Values(name); len(v) != 1 || v[0] != want {
				t.Errorf("backend got %s %q, want exactly the verified %q", name, v, want)
			}
		}
	}
	connection := func(lines ...string) func(f *attackFixture) []string {
		return func(f *attackFixture) []string {
			h := bearer(f.token())
			for _, l := range lines {
				h = append(h, "Connection", l)
			}
			return h
		}
	}
	// chunked is a raw chunked POST with a body and the given trailers.
	chunked := func(path, auth, declared, trailers string) func(f *attackFixture) string {
		return func(f *attackFixture) string {
			req := "POST " + path + " HTTP/1.1\r\nHost: localhost\r\n"
			if auth != "" {
				req += "Authorization: Bearer " + strings.ReplaceAll(auth, "TOKEN", f.token()) + "\r\n"
			}
			if declared != "" {
				req += "Trailer: " + declared + "\r\n"
			}
			return req + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
				"5\r\nhello\r\n6\r\n world\r\n0\r\n" + trailers + "\r\n"
		}
	}
	// noIdentityTrailers checks the body arrived whole, the innocent
	// trailer X-Other (when sent) arrived — so trailers are forwarded at
	// all — and no identity name did.
	noIdentityTrailers := func(wantOther bool) func(t *testing.T, f *attackFixture, got http.Header) {
		return func(t *testing.T, f *attackFixture, got http.Header) {
			t.Helper()
			verified(t, f, got)
			_, body, tr := f.e.backend.lastRequest()
			if body != "hello world" {
				t.Errorf("backend body %q", body)
			}
			for name, vals := range tr {
				n := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
				if strings.HasPrefix(n, "x-cognito-") || n == "x-user-email" {
					t.Errorf("identity trailer %s: %q reached the backend", name, vals)
				}
			}
			if wantOther && tr.Get("X-Other") != "kept" {
				t.Errorf("the innocent trailer X-Other did not arrive (trailers %v): the row proves nothing", tr)
			}
		}
	}
	// cookieStripped checks that no part of the credential reached the
	// backend in its Cookie header, and the other cookies did.
	cookieStripped := func(t *testing.T, f *attackFixture, got http.Header) {
		t.Helper()
		verified(t, f, got)
		c := strings.Join(got.Values("Cookie"), "; ")
		if strings.Contains(c, "eyJ") || strings.Contains(c, "token") {
			t.Errorf("the credential cookie reached the backend: Cookie %.80q…", c)
		}
		if !strings.Contains(c, "a=1") || !strings.Contains(c, "b=2") {
			t.Errorf("the other cookies were lost: Cookie %q", c)
		}
		if v := got.Get("Authorization"); v != "" {
			t.Errorf("Authorization %q reached the backend", v)
		}
	}
	cookie := func(line ...string) func(f *attackFixture) []string {
		return func(f *attackFixture) []string {
			var h []string
			for _, l := range line {
				h = append(h, "Cookie", strings.ReplaceAll(l, "TOKEN", f.token()))
			}
			return h
		}
	}
	// dropped checks that the named headers are absent and the named
	// header_up placeholders empty, and the rest of the identity intact.
	dropped := func(headers []string, placeholders []string) func(t *testing.T, f *attackFixture, got http.Header) {
		return func(t *testing.T, _ *attackFixture, got http.Header) {
			t.Helper()
			for _, h := range headers {
				if v := got.Values(h); len(v) != 0 {
					t.Errorf("backend got %s %q: a value with edge whitespace was forwarded", h, v)
				}
			}
			for _, h := range placeholders {
				if v := got.Get(h); v != "" {
					t.Errorf("header_up %s = %q: a value with edge whitespace was forwarded by a placeholder", h, v)
				}
			}
			if v := got.Values("X-Cognito-Client-Id"); len(v) != 1 || v[0] != testClient {
				t.Errorf("X-Cognito-Client-Id %q", v)
			}
		}
	}
	noLiteralPlaceholder := func(t *testing.T, _ *attackFixture, got http.Header) {
		t.Helper()
		for name, vals := range got {
			for _, v := range vals {
				if strings.Contains(v, "{http.") {
					t.Errorf("backend got %s %q: a placeholder was forwarded as literal text", name, v)
				}
			}
		}
		if v := got.Get("X-Claim-Missing"); v != "[]" {
			t.Errorf("header_up [{http.auth.user.claims.custom:no_such_claim}] gave %q, want []", v)
		}
	}

	return []attackCase{
		// Hop-by-hop: a Connection header naming identity headers would make
		// reverse_proxy drop the verified values (RFC 9110 §7.6.1). The
		// handler removes such tokens, in every spelling the strip set
		// covers, and keeps the others.
		{name: "Connection names the default identity headers", mint: connection("X-Cognito-Sub, X-Cognito-Groups, X-Cognito-Username, X-Cognito-Scope, X-Cognito-Client-Id, X-Cognito-Token-Use"),
			status: 200, check: verified},
		{name: "Connection names the configured claim header", mint: connection("X-User-Email"), status: 200, check: verified},
		{name: "Connection names identity headers in other cases", mint: connection("x-cognito-sub, X-COGNITO-GROUPS, x-user-email"), status: 200, check: verified},
		{name: "Connection names identity headers with _ and .", mint: connection("X_Cognito_Sub, x.cognito.groups, X_User_Email"), status: 200, check: verified},
		{name: "Connection over several lines with keep-alive", mint: connection("keep-alive", "X-Cognito-Sub", "Upgrade-Insecure, X-User-Email"), status: 200, check: verified},
		{name: "Connection tokens padded with spaces and tabs", mint: connection(" \tX-Cognito-Sub\t ,  ,X-Cognito-Groups ,\tX-User-Email"), status: 200, check: verified},
		{name: "Connection names every identity header and spoofs them", mint: func(f *attackFixture) []string {
			return append(connection("X-Cognito-Sub, X-Cognito-Groups, X-User-Email")(f), "X-Cognito-Sub", "admin-1", "X-Cognito-Groups", "admins")
		}, status: 200, check: verified},
		{name: "Connection names identity headers, no token", mint: func(*attackFixture) []string {
			return []string{"Connection", "X-Cognito-Sub, X-User-Email"}
		}, status: 401, reason: "missing"},

		// Placeholders: every key under http.auth.user.claims. resolves,
		// to empty when the claim is absent, never to its own text.
		{name: "placeholder of an absent claim", mint: func(f *attackFixture) []string { return bearer(f.token("email", nil)) },
			status: 200, check: func(t *testing.T, f *attackFixture, got http.Header) {
				noLiteralPlaceholder(t, f, got)
				if v := got.Get("X-Claim-Email"); v != "" {
					t.Errorf("header_up {http.auth.user.claims.email} without email gave %q", v)
				}
			}},
		{name: "placeholder of an absent username", mint: func(f *attackFixture) []string { return bearer(f.token("username", nil)) },
			status: 200, check: func(t *testing.T, f *attackFixture, got http.Header) {
				noLiteralPlaceholder(t, f, got)
				if v := got.Get("X-Claim-User"); v != "" {
					t.Errorf("header_up {http.auth.user.username} without username gave %q", v)
				}
			}},
		{name: "placeholder of a claim never issued", mint: func(f *attackFixture) []string { return bearer(f.token()) },
			status: 200, check: noLiteralPlaceholder},

		// Error routes: the site's handle_errors proxies to the backend;
		// a denial must still be answered without the request reaching it.
		{name: "error route proxies: POST with a body, no token", raw: func(*attackFixture) string {
			return "POST /api/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"amount\":999999}"
		}, status: 401, reason: "missing"},
		{name: "error route proxies: POST with a body, expired token", raw: func(f *attackFixture) string {
			return "POST /api/x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + f.token("exp", time.Now().Unix()-60) +
				"\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"amount\":999999}"
		}, status: 401, desc: dExpired, reason: "expired"},
		{name: "error route proxies: chunked POST, malformed token", raw: chunked("/api/x", "x.y.z", "", ""),
			status: 401, desc: dHeader, reason: "malformed"},
		{name: "error route proxies: POST without the scope", raw: func(f *attackFixture) string {
			return "POST /scoped/x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + f.token() +
				"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
		}, status: 403, desc: dScope, scope: "order/post.order", reason: "scope"},
		{name: "error route proxies: cookie route, no cookie", raw: func(*attackFixture) string {
			return "PUT /cookie/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
		}, status: 401, reason: "missing"},

		// Cookie spellings: strip_authorization removes the credential
		// cookie in every spelling the extraction accepts (net/http trims
		// space and tab around the name), keeping the other cookies.
		{name: "cookie credential, plain", path: "/cookie/x", mint: cookie("a=1; token=TOKEN; b=2"), status: 200, check: cookieStripped},
		{name: "cookie credential, space before =", path: "/cookie/x", mint: cookie("a=1; token =TOKEN; b=2"), status: 200, check: cookieStripped},
		{name: "cookie credential, tab before =", path: "/cookie/x", mint: cookie("a=1; token\t=TOKEN; b=2"), status: 200, check: cookieStripped},
		{name: "cookie credential, spaces and tabs around the name", path: "/cookie/x", mint: cookie("a=1;\t token \t=TOKEN;b=2"), status: 200, check: cookieStripped},
		{name: "cookie credential, quoted value", path: "/cookie/x", mint: cookie(`a=1; token="TOKEN"; b=2`), status: 200, check: cookieStripped},
		{name: "cookie credential, no spaces", path: "/cookie/x", mint: cookie("a=1;token=TOKEN;b=2"), status: 200, check: cookieStripped},
		{name: "cookie credential on its own Cookie line", path: "/cookie/x", mint: cookie("a=1", "\ttoken =TOKEN ", "b=2"), status: 200, check: cookieStripped},
		{name: "cookie credential, empty parts around it", path: "/cookie/x", mint: cookie(";; a=1 ;; token =TOKEN;; b=2 ;"), status: 200, check: cookieStripped},
		{name: "cookie credential twice, spaced spelling", path: "/cookie/x", mint: cookie("token=TOKEN; token =TOKEN"),
			status: 401, desc: dMultiple, reason: "multiple_tokens"},

		// Trailers: identity names in request trailers, declared or not,
		// never reach the backend; other trailers and the body do.
		{name: "declared identity trailers", raw: chunked("/api/x", "TOKEN", "X-Cognito-Sub, X-User-Email, X-Other",
			"X-Cognito-Sub: admin-1\r\nX-User-Email: ceo@example.com\r\nX-Other: kept\r\n"), status: 200, check: noIdentityTrailers(true)},
		{name: "undeclared identity trailers next to a declared one", raw: chunked("/api/x", "TOKEN", "X-Other",
			"X-Other: kept\r\nX-Cognito-Groups: admins\r\nX-Cognito-Sub: admin-2\r\nx-user-email: ceo@example.com\r\n"), status: 200, check: noIdentityTrailers(true)},
		{name: "identity trailers in other spellings", raw: chunked("/api/x", "TOKEN", "x-cognito-sub, X-Other",
			"x-cognito-sub: admin-3\r\nX-COGNITO-USERNAME: root\r\nX-Other: kept\r\n"), status: 200, check: noIdentityTrailers(true)},
		{name: "undeclared identity trailers only", raw: chunked("/api/x", "TOKEN", "",
			"X-Cognito-Sub: admin-4\r\nX-User-Email: ceo@example.com\r\n"), status: 200, check: noIdentityTrailers(false)},
		{name: "identity trailers, no token", raw: chunked("/api/x", "", "X-Cognito-Sub", "X-Cognito-Sub: admin-5\r\n"),
			status: 401, reason: "missing"},

		// Whitespace values: a value with a leading or trailing space or
		// tab would arrive trimmed by the backend's HTTP parser and pose as
		// another value; it is dropped like a value with control
		// characters, as a header and through placeholders.
		{name: "claim with a leading space", mint: func(f *attackFixture) []string { return bearer(f.token("username", " admin")) },
			status: 200, check: dropped([]string{"X-Cognito-Username"}, []string{"X-Claim-User"})},
		{name: "claim with a trailing tab", mint: func(f *attackFixture) []string { return bearer(f.token("username", "admin\t")) },
			status: 200, check: dropped([]string{"X-Cognito-Username"}, []string{"X-Claim-User"})},
		{name: "configured claim padded with spaces", mint: func(f *attackFixture) []string { return bearer(f.token("email", " ceo@example.com ")) },
			status: 200, check: dropped([]string{"X-User-Email"}, []string{"X-Claim-Email"})},
		{name: "claim of only a tab", mint: func(f *attackFixture) []string { return bearer(f.token("email", "\t")) },
			status: 200, check: dropped([]string{"X-User-Email"}, []string{"X-Claim-Email"})},
		{name: "sub with a trailing space", mint: func(f *attackFixture) []string { return bearer(f.token("sub", attackSub+" ")) },
			status: 200, check: dropped([]string{"X-Cognito-Sub"}, nil)},
		{name: "control: inner spaces are kept", mint: func(f *attackFixture) []string { return bearer(f.token("email", "Alice Smith <a@b.example>")) },
			status: 200, check: func(t *testing.T, _ *attackFixture, got http.Header) {
				if v := got.Get("X-User-Email"); v != "Alice Smith <a@b.example>" {
					t.Errorf("X-User-Email %q", v)
				}
				if v := got.Get("X-Claim-Email"); v != "Alice Smith <a@b.example>" {
					t.Errorf("X-Claim-Email %q", v)
				}
			}},
	}
}
