package config

import (
	"encoding/base64"
	"strings"
	"testing"
)

var key32 = base64.StdEncoding.EncodeToString(make([]byte, 32))

func TestLoginValidate(t *testing.T) {
	valid := func() Login {
		return Login{CookieSecret: key32, ClientSecret: "x"}
	}
	l := valid()
	l.SetDefaults([]string{"client"})
	if err := l.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if l.ClientID != "client" || l.ClientAuth != ClientAuthBasic || l.Callback != DefaultCallback ||
		l.CookieName != DefaultSessionCookie || l.OnUnauthenticated != OnUnauthAuthenticate || l.Scopes[0] != "openid" {
		t.Fatalf("defaults %+v", l)
	}
	for _, c := range []struct {
		mod  func(*Login)
		want string
	}{
		{func(l *Login) { l.CookieSecret = "" }, "cookie_secret: required"},
		{func(l *Login) { l.CookieSecret = base64.StdEncoding.EncodeToString(make([]byte, 16)) }, "key 1 is 16 bytes"},
		{func(l *Login) { l.CookieSecret = key32 + " %%%" }, "key 2 is not base64"},
		{func(l *Login) { l.ClientSecret = ""; l.ClientAuth = ClientAuthPrivateKeyJWT }, "needs private_key"},
		{func(l *Login) { l.ClientSecret = ""; l.ClientAuth = ClientAuthPost }, "needs client_secret"},
		{func(l *Login) { l.ClientAuth = "client_secret_jwt" }, "client_auth \"client_secret_jwt\""},
		{func(l *Login) { l.Callback = "oauth2/idpresponse" }, "callback"},
		{func(l *Login) { l.Callback = "//evil/cb" }, "callback"},
		{func(l *Login) { l.Callback = "/cb?x=1" }, "callback"},
		{func(l *Login) { l.Logout = "/oauth2/idpresponse" }, "same path as callback"},
		{func(l *Login) { l.LogoutRedirect = "javascript:alert(1)" }, "logout_redirect"},
		{func(l *Login) { l.Scopes = []string{"email"} }, "must include openid"},
		{func(l *Login) { l.OnUnauthenticated = "redirect" }, "on_unauthenticated"},
		{func(l *Login) { l.SessionTimeout = Duration(1) }, "session_timeout"},
		{func(l *Login) { l.CookieName = "a;b" }, "cookie_name"},
		{func(l *Login) { l.Domain = "auth.example.com" }, "domain"},
		{func(l *Login) { l.AuthParams = map[string]string{"redirect_uri": "x"} }, "auth_params"},
		{func(l *Login) { l.ALBKeyPath = "/keys" }, "need alb_headers"},
	} {
		l := valid()
		c.mod(&l)
		l.SetDefaults([]string{"client"})
		err := l.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", l, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), key32) {
			t.Errorf("error echoes the secret: %v", err)
		}
	}
	// Placeholders are checked after replacement, at provision.
	l = valid()
	l.CookieSecret = "{env.SESSION_KEYS}"
	l.SetDefaults([]string{"client"})
	if err := l.Validate(); err != nil {
		t.Fatalf("placeholder secret: %v", err)
	}
}
