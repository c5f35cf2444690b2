package fetch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emersion/go-sasl"
)

// oauthClient is the SASL client of an account that logs in with an
// OAuth 2.0 access token: OAUTHBEARER (RFC 7628) or XOAUTH2, the
// mechanism Google and Microsoft offered before it. Either sends the
// token in its initial response and has nothing more to say: a server
// that refuses the token sends its error as a challenge (RFC 7628 3.2.2,
// and XOAUTH2 servers alike), which Next reports.
type oauthClient struct {
	mech string
	ir   []byte
}

var _ sasl.Client = (*oauthClient)(nil)

// oauthClient returns the account's SASL client presenting token, or nil
// for an account that logs in with a password.
func (a *Account) oauthClient(token string) *oauthClient {
	switch a.Auth {
	case AuthOAuthBearer:
		// RFC 7628 3.1: a GS2 header naming the user (RFC 5801 4, with
		// "," and "=" escaped), the host and port the client meant, and
		// the token.
		user := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(a.User)
		ir := "n,a=" + user + ",\x01host=" + a.Host + "\x01port=" + strconv.Itoa(a.Port) +
			"\x01auth=Bearer " + token + "\x01\x01"
		return &oauthClient{mech: sasl.OAuthBearer, ir: []byte(ir)}
	case AuthXOAuth2:
		return &oauthClient{mech: "XOAUTH2", ir: []byte("user=" + a.User + "\x01auth=Bearer " + token + "\x01\x01")}
	}
	return nil
}

func (c *oauthClient) Start() (string, []byte, error) { return c.mech, c.ir, nil }

func (c *oauthClient) Next(challenge []byte) ([]byte, error) {
	return nil, oauthRefusal(challenge)
}

// errOAuthRefused is a server's refusal of an OAuth 2.0 token.
var errOAuthRefused = errors.New("the server refused the OAuth 2.0 token")

// oauthRefusal describes the error a server sent as its challenge to a
// token: JSON with an HTTP-like status, and the scope the token needs
// (RFC 7628 3.2.2).
func oauthRefusal(challenge []byte) error {
	var e sasl.OAuthBearerError
	if err := json.Unmarshal(challenge, &e); err != nil || e.Status == "" {
		return fmt.Errorf("%w: %q", errOAuthRefused, challenge)
	}
	if e.Scope != "" {
		return fmt.Errorf("%w (status %s; the token needs scope %s)", errOAuthRefused, e.Status, e.Scope)
	}
	return fmt.Errorf("%w (status %s)", errOAuthRefused, e.Status)
}

// loginRefused is the error for a login the server refused: text is its
// reason; an OAuth 2.0 refusal says what to check.
func (r *run) loginRefused(text string) error {
	if r.a.Auth != AuthPassword {
		return fmt.Errorf("%w: %s refused user %q: %s; check that password_command prints a fresh token for this account",
			ErrLogin, r.a.addr(), r.a.User, text)
	}
	return fmt.Errorf("%w: %s refused user %q: %s", ErrLogin, r.a.addr(), r.a.User, text)
}
