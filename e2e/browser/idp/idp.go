// Package idp is the OpenID provider of the browser sign-in tests and of
// `make demo`: zitadel/oidc's op package (a certified OpenID Connect
// provider library) with its example in-memory storage and login page,
// wrapped to issue tokens shaped like Amazon Cognito's.
package idp

import (
	"context"
	"crypto/rsa"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// cognitoStorage wraps the example
// storage to issue tokens shaped like Amazon Cognito's: access tokens with
// token_use "access", client_id, username, scope and cognito:groups; ID
// tokens with token_use "id", cognito:username and cognito:groups. One
// detail cannot be shaped: the library always puts an "aud" (the client id)
// into JWT access tokens, where Cognito's have none. Our authorizer checks
// "aud" when present, so these tokens take the aud path, not the client_id
// one (which the authz tests cover).

// The users: alice (groups staff, readers) and bob (readers), both with
// Password.
const (
	Password = "correct-horse-battery"
	Group    = "staff"
)

// Client is an OAuth client of the provider.
type Client struct {
	ID         string
	Secret     string
	Method     oidc.AuthMethod // client_secret_basic, client_secret_post, none, private_key_jwt
	Redirects  []string
	LogoutURIs []string
	Key        *rsa.PublicKey // private_key_jwt
	KeyID      string
}

func (c *Client) GetID() string                    { return c.ID }
func (c *Client) RedirectURIs() []string           { return c.Redirects }
func (c *Client) PostLogoutRedirectURIs() []string { return c.LogoutURIs }
func (c *Client) ApplicationType() op.ApplicationType {
	if c.Method == oidc.AuthMethodNone {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}
func (c *Client) AuthMethod() oidc.AuthMethod { return c.Method }
func (c *Client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *Client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *Client) LoginURL(id string) string            { return "/login/username?authRequestID=" + id }
func (c *Client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeJWT }
func (c *Client) IDTokenLifetime() time.Duration       { return time.Hour }
func (c *Client) DevMode() bool                        { return true } // http redirect URIs on loopback
func (c *Client) IsScopeAllowed(string) bool           { return false }
func (c *Client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *Client) ClockSkew() time.Duration             { return 0 }
func (c *Client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *Client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
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
	clients map[string]*Client

	accessTTL atomic.Int64 // nanoseconds
	codes     atomic.Int64 // authorization_code grants
	refreshes atomic.Int64 // refresh_token grants
}

func (s *cognitoStorage) client(id string) (*Client, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	return c, ok
}

func (s *cognitoStorage) addClient(c *Client) {
	s.mu.Lock()
	s.clients[c.ID] = c
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
	if !ok || c.Secret == "" || c.Secret != secret {
		return errors.New("invalid client credentials")
	}
	return nil
}

func (s *cognitoStorage) GetKeyByIDAndClientID(_ context.Context, keyID, clientID string) (*jose.JSONWebKey, error) {
	c, ok := s.client(clientID)
	if !ok || c.Key == nil || (keyID != "" && keyID != c.KeyID) {
		return nil, errors.New("key not found")
	}
	return &jose.JSONWebKey{KeyID: c.KeyID, Use: "sig", Algorithm: "RS256", Key: c.Key}, nil
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

// Provider is a running OpenID provider.
type Provider struct {
	Issuer string
	store  *cognitoStorage
	srv    *http.Server
}

// AddClient registers a client.
func (p *Provider) AddClient(c *Client) { p.store.addClient(c) }

// SetAccessTokenTTL sets the lifetime of the access tokens issued from now.
func (p *Provider) SetAccessTokenTTL(d time.Duration) { p.store.accessTTL.Store(int64(d)) }

// CodeGrants and RefreshGrants count the token endpoint's grants.
func (p *Provider) CodeGrants() int64    { return p.store.codes.Load() }
func (p *Provider) RefreshGrants() int64 { return p.store.refreshes.Load() }

// Close stops the provider.
func (p *Provider) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.srv.Shutdown(ctx)
}

// Start serves a provider on addr (e.g. 127.0.0.1:0); its issuer is
// http://<the address>.
func Start(addr string) (*Provider, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	issuer := "http://" + ln.Addr().String()
	us := users{"user-alice": {
		ID: "user-alice", Username: "alice", Password: Password, FirstName: "Alice", LastName: "Liddell",
		Email: "alice@example.com", EmailVerified: true, PreferredLanguage: language.English,
	}, "user-bob": {
		ID: "user-bob", Username: "bob", Password: Password, FirstName: "Bob", LastName: "B",
		Email: "bob@example.com", EmailVerified: true, PreferredLanguage: language.English,
	}}
	st := &cognitoStorage{
		Storage: storage.NewStorageWithClients(us, map[string]*storage.Client{}),
		users:   us,
		groups:  map[string][]string{"user-alice": {Group, "readers"}, "user-bob": {"readers"}},
		clients: map[string]*Client{},
	}
	st.accessTTL.Store(int64(time.Hour))
	router := exampleop.SetupServer(issuer, st, nil, false)
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &Provider{Issuer: issuer, store: st, srv: srv}, nil
}
