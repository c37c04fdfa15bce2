package login

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Session is what the session cookie holds, sealed: the tokens, the access
// token's expiry and when the session began (the absolute timeout counts
// from it, refreshes or not).
type Session struct {
	AccessToken  string `json:"a"`
	IDToken      string `json:"i"`
	RefreshToken string `json:"r,omitempty"`
	Expires      int64  `json:"e"` // exp of the token the session presents
	Created      int64  `json:"c"`
}

// Token returns the token the session presents to the authorizer.
func (e *Engine) Token(s *Session) string {
	if e.opts.UseIDToken {
		return s.IDToken
	}
	return s.AccessToken
}

// sessionPurpose binds sealed sessions to the cookie name (GCM additional
// data): a value sealed for another purpose does not open as a session.
func (e *Engine) sessionPurpose() string { return "session:" + e.cfg.CookieName }

func (e *Engine) writeSession(w http.ResponseWriter, r *http.Request, s *Session) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	left := time.Unix(s.Created, 0).Add(time.Duration(e.cfg.SessionTimeout)).Sub(e.now())
	return writeChunks(w, r, e.cfg.CookieName, e.sealer.Seal(e.sessionPurpose(), raw), left)
}

// State is what Load found.
type State int

const (
	// NoSession: no session cookie.
	NoSession State = iota
	// Valid: a session whose token is not due for refresh.
	Valid
	// Refreshed: the tokens were refreshed and the cookie rewritten.
	Refreshed
	// Invalid: a cookie that does not open (tampered, truncated, another
	// key) or is malformed; it is cleared.
	Invalid
	// Expired: past session_timeout, or the token expired and there is no
	// refresh token; it is cleared.
	Expired
	// RefreshFailed: the refresh was refused or failed; it is cleared.
	RefreshFailed
)

func (s State) String() string {
	return [...]string{"none", "valid", "refreshed", "invalid", "expired", "refresh_failed"}[s]
}

// refreshWindow: tokens are refreshed when they have less than this left,
// so a request never reaches the backend with a token about to lapse.
const refreshWindow = 60 * time.Second

// Load opens the session of the request, refreshing its tokens when they
// are within a minute of expiry and a refresh token is held. It returns the
// session (nil unless Valid or Refreshed), what it found, and, for a failed
// refresh, the error for the log. A session that cannot be used is cleared.
func (e *Engine) Load(w http.ResponseWriter, r *http.Request) (*Session, State, error) {
	value, _, ok, err := readChunks(r, e.cfg.CookieName)
	if !ok {
		return nil, NoSession, nil
	}
	var s Session
	if err == nil {
		var raw []byte
		if raw, err = e.sealer.Open(e.sessionPurpose(), value); err == nil {
			err = json.Unmarshal(raw, &s)
		}
	}
	if err == nil && (s.AccessToken == "" || s.IDToken == "" || s.Created == 0) {
		err = errors.New("login: session is incomplete")
	}
	if err != nil {
		clearChunks(w, r, e.cfg.CookieName)
		return nil, Invalid, err
	}
	now := e.now()
	end := time.Unix(s.Created, 0).Add(time.Duration(e.cfg.SessionTimeout))
	if !now.Before(end) {
		clearChunks(w, r, e.cfg.CookieName)
		return nil, Expired, nil
	}
	if now.Add(refreshWindow).Unix() < s.Expires {
		return &s, Valid, nil
	}
	if s.RefreshToken == "" {
		if now.Unix() < s.Expires {
			return &s, Valid, nil // still good for a few seconds
		}
		clearChunks(w, r, e.cfg.CookieName)
		return nil, Expired, nil
	}
	ns, err := e.refresh(r.Context(), &s)
	if err != nil {
		clearChunks(w, r, e.cfg.CookieName)
		return nil, RefreshFailed, err
	}
	if err := e.writeSession(w, r, ns); err != nil {
		clearChunks(w, r, e.cfg.CookieName)
		return nil, RefreshFailed, err
	}
	return ns, Refreshed, nil
}

// recentRefresh remembers a refresh for a short while: requests that were
// already under way with the old cookie (a page's parallel subresource
// requests) get the same new session instead of spending the refresh
// token again — with refresh token rotation, a second use would fail and
// sign the user out.
type recentRefresh struct {
	s  *Session
	at time.Time
}

const (
	recentTTL = 30 * time.Second
	maxRecent = 10_000
)

// refresh redeems the refresh token, once per session at a time
// (singleflight on the refresh token), and verifies the new tokens.
func (e *Engine) refresh(ctx context.Context, s *Session) (*Session, error) {
	sum := sha256.Sum256([]byte(s.RefreshToken))
	key := string(sum[:])
	e.recentMu.Lock()
	if rr, ok := e.recent[key]; ok && e.now().Sub(rr.at) < recentTTL {
		e.recentMu.Unlock()
		return rr.s, nil
	}
	e.recentMu.Unlock()
	v, err, _ := e.refreshes.Do(key, func() (any, error) {
		// Detached from the first caller's context: the others wait on
		// this result too, and a client that goes away must not fail
		// their refresh.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		form := url.Values{}
		form.Set("grant_type", "refresh_token")
		form.Set("refresh_token", s.RefreshToken)
		ep, err := e.Endpoints(ctx)
		if err != nil {
			return nil, err
		}
		tr, err := tokenRequest(ctx, e.client, e.auth, ep.Token, form)
		if err != nil {
			return nil, err
		}
		if tr.IDToken == "" {
			// Cognito and others may omit the ID token on refresh; the
			// session keeps the one it has (its exp is not checked again
			// unless the session presents it).
			tr.IDToken = s.IDToken
		}
		ns, cerr := e.verifyTokens(ctx, tr, s.RefreshToken, "")
		if cerr != nil {
			return nil, cerr
		}
		ns.Created = s.Created
		e.recentMu.Lock()
		now := e.now()
		if len(e.recent) >= maxRecent {
			for k, rr := range e.recent {
				if now.Sub(rr.at) >= recentTTL {
					delete(e.recent, k)
				}
			}
			if len(e.recent) >= maxRecent {
				clear(e.recent)
			}
		}
		e.recent[key] = recentRefresh{s: ns, at: now}
		e.recentMu.Unlock()
		return ns, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Session), nil
}

// Clear expires the session cookie's chunks.
func (e *Engine) Clear(w http.ResponseWriter, r *http.Request) {
	clearChunks(w, r, e.cfg.CookieName)
}

// StripCookies removes the session chunks and state cookies from the
// request, so the backend never sees them.
func (e *Engine) StripCookies(r *http.Request) {
	prefix := e.cfg.CookieName + "-"
	removeCookies(r, func(name string) bool { return strings.HasPrefix(name, prefix) })
}

// LogoutURL is where the browser goes after its cookies are cleared: the
// provider's logout (Cognito: /logout with client_id and logout_uri;
// others: end_session_endpoint with client_id and
// post_logout_redirect_uri), or the logout_redirect itself when the
// provider has no logout endpoint.
func (e *Engine) LogoutURL(r *http.Request) string {
	back := e.cfg.LogoutRedirect
	if back == "" || strings.HasPrefix(back, "/") {
		scheme := "https"
		if r.TLS == nil {
			scheme = "http"
		}
		back = scheme + "://" + r.Host + firstNonEmpty(back, "/")
	}
	ep, _ := e.Endpoints(r.Context())
	if ep.Logout == "" {
		return back
	}
	q := url.Values{}
	q.Set("client_id", e.cfg.ClientID)
	if ep.Cognito {
		q.Set("logout_uri", back)
	} else {
		q.Set("post_logout_redirect_uri", back)
	}
	return withQuery(ep.Logout, q)
}
