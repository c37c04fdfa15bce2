package browser

import (
	"context"
	"crypto/rsa"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// The OpenID provider of these tests is zitadel/oidc's op package (a
// certified OpenID Connect provider library) with its example in-memory
// storage and username/password login page. cognitoStorage wraps that
// storage to issue tokens shaped like Amazon Cognito's: access tokens with
// token_use "access", client_id, username, scope and cognito:groups; ID
// tokens with token_use "id", cognito:username and cognito:groups. One
// detail cannot be shaped: the library always puts an "aud" (the client id)
// into JWT access tokens, where Cognito's have none. Our authorizer checks
// "aud" when present, so these tokens take the aud path, not the client_id
// one (which the authz tests cover).

const (
	testUser     = "alice"
	testPassword = "correct-horse-battery"
	testGroup    = "staff"
)

// opClient is an OAuth client of the provider.
type opClient struct {
	id           string
	secret       string
	authMethod   oidc.AuthMethod
	redirectURIs []string
	logoutURIs   []string
	key          *rsa.PublicKey // private_key_jwt
	keyID        string
}

func (c *opClient) GetID() string                    { return c.id }
func (c *opClient) RedirectURIs() []string           { return c.redirectURIs }
func (c *opClient) PostLogoutRedirectURIs() []string { return c.logoutURIs }
func (c *opClient) ApplicationType() op.ApplicationType {
	if c.authMethod == oidc.AuthMethodNone {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}
func (c *opClient) AuthMethod() oidc.AuthMethod { return c.authMethod }
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *opClient) LoginURL(id string) string            { return "/login/username?authRequestID=" + id }
func (c *opClient) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *opClient) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *opClient) DevMode() bool                        { return true } // http redirect URIs on loopback
func (c *opClient) IsScopeAllowed(string) bool           { return false }
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *opClient) ClockSkew() time.Duration             { return 0 }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// users is the provider's user store.
type users map[string]*storage.User

func (u users) GetUserByID(id string) *storage.User { return u[id] }
func (u users) GetUserByUsername(name string) *storage.User {
	for _, x := range u {
		if x.Username == name {
			return x
		}
	}
	return nil
}
func (u users) ExampleClientID() string { return "service" }

// cognitoStorage is the example storage with Cognito-shaped claims, our
// clients, an access-token lifetime the test controls, and counters.
type cognitoStorage struct {
	*storage.Storage
	users  users
	groups map[string][]string

	mu      sync.Mutex
	clients map[string]*opClient

	accessTTL atomic.Int64 // nanoseconds
	codes     atomic.Int64 // authorization_code grants
	refreshes atomic.Int64 // refresh_token grants
}

func (s *cognitoStorage) client(id string) (*opClient, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	return c, ok
}

func (s *cognitoStorage) addClient(c *opClient) {
	s.mu.Lock()
	s.clients[c.id] = c
	s.mu.Unlock()
}

func (s *cognitoStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if c, ok := s.client(id); ok {
		return c, nil
	}
	return nil, errors.New("client not found")
}

func (s *cognitoStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.client(id)
	if !ok || c.secret == "" || c.secret != secret {
		return errors.New("invalid client credentials")
	}
	return nil
}

func (s *cognitoStorage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	c, ok := s.client(clientID)
	if !ok || c.key == nil || (keyID != "" && keyID != c.keyID) {
		return nil, errors.New("key not found")
	}
	return &jose.JSONWebKey{KeyID: c.keyID, Use: "sig", Algorithm: "RS256", Key: c.key}, nil
}

// SetUserinfoFromRequest shapes the ID token like Cognito's.
func (s *cognitoStorage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, ui, req, scopes); err != nil {
		return err
	}
	if u := s.users.GetUserByID(req.GetSubject()); u != nil {
		ui.AppendClaims("token_use", "id")
		ui.AppendClaims("cognito:username", u.Username)
		ui.AppendClaims("cognito:groups", s.groups[u.ID])
	}
	return nil
}

// GetPrivateClaimsFromScopes shapes the access token like Cognito's.
func (s *cognitoStorage) GetPrivateClaimsFromScopes(_ context.Context, userID, _ string, _ []string) (map[string]any, error) {
	u := s.users.GetUserByID(userID)
	if u == nil {
		return nil, errors.New("user not found")
	}
	return map[string]any{"token_use": "access", "username": u.Username, "cognito:groups": s.groups[u.ID]}, nil
}

func (s *cognitoStorage) ttl() time.Duration { return time.Duration(s.accessTTL.Load()) }

// CreateAccessAndRefreshTokens counts the grants and applies the access
// token lifetime the test set (the JWT's exp is this expiration).
func (s *cognitoStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	id, refresh, _, err := s.Storage.CreateAccessAndRefreshTokens(ctx, req, current)
	if current == "" {
		s.codes.Add(1)
	} else {
		s.refreshes.Add(1)
	}
	return id, refresh, time.Now().Add(s.ttl()), err
}

func (s *cognitoStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	id, _, err := s.Storage.CreateAccessToken(ctx, req)
	s.codes.Add(1)
	return id, time.Now().Add(s.ttl()), err
}

// provider is a running OpenID provider.
type provider struct {
	Issuer string
	store  *cognitoStorage
}

// startProvider serves the provider on a free loopback port.
func startProvider(t *testing.T) *provider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	us := users{"user-alice": {
		ID: "user-alice", Username: testUser, Password: testPassword, FirstName: "Alice", LastName: "Liddell",
		Email: "alice@example.com", EmailVerified: true, PreferredLanguage: language.English,
	}, "user-bob": {
		ID: "user-bob", Username: "bob", Password: testPassword, FirstName: "Bob", LastName: "B",
		Email: "bob@example.com", EmailVerified: true, PreferredLanguage: language.English,
	}}
	st := &cognitoStorage{
		Storage: storage.NewStorageWithClients(us, map[string]*storage.Client{}),
		users:   us,
		groups:  map[string][]string{"user-alice": {testGroup, "readers"}, "user-bob": {"readers"}},
		clients: map[string]*opClient{},
	}
	st.accessTTL.Store(int64(time.Hour))
	router := exampleop.SetupServer(issuer, st, nil, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &provider{Issuer: issuer, store: st}
}

// hasGroup reports whether a comma-joined group header holds g.
func hasGroup(header, g string) bool {
	return slices.Contains(strings.Split(header, ","), g)
}
