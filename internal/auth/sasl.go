package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/buzon-mail/buzon/internal/store"
)

// Mechanism is the server side of one SASL exchange (RFC 4422). The
// protocol layer moves the bytes: it passes each client response to Next
// and sends back each challenge, until Next reports done or an error.
type Mechanism interface {
	// Next takes the client's next response. The first call passes the
	// initial response, or nil when the client sent none (which differs
	// from an empty initial response, RFC 4959 3). When done is true the
	// client is authenticated and Account returns who it is; challenge may
	// then hold data to send with the success, which protocols without
	// that ability send as a last challenge whose answer is ignored.
	Next(ctx context.Context, response []byte) (challenge []byte, done bool, err error)
	// Account is the authenticated account once Next has reported done.
	Account() store.Account
}

// Mechanism names.
const (
	PLAIN       = "PLAIN"
	LOGIN       = "LOGIN"
	SCRAMSHA256 = "SCRAM-SHA-256"
)

// Mechanisms lists the mechanisms to advertise: SCRAM always, and the
// plaintext ones only where plaintext is allowed (on TLS or loopback, or
// when the configuration says so; RFC 9051 11.1).
func Mechanisms(plaintextAllowed bool) []string {
	if plaintextAllowed {
		return []string{SCRAMSHA256, PLAIN, LOGIN}
	}
	return []string{SCRAMSHA256}
}

// PlaintextAllowed reports whether a connection may send a password in
// the clear: it uses TLS, or comes from loopback, or the configuration
// allows it everywhere.
func PlaintextAllowed(tls bool, remote netip.Addr, allowAnywhere bool) bool {
	return tls || allowAnywhere || remote.Unmap().IsLoopback()
}

// NewMechanism starts an exchange with the named mechanism (any case)
// for a client at remote.
func (a *Authenticator) NewMechanism(name string, remote netip.Addr) (Mechanism, error) {
	switch strings.ToUpper(name) {
	case PLAIN:
		return &plainMech{a: a, remote: remote}, nil
	case LOGIN:
		return &loginMech{a: a, remote: remote}, nil
	case SCRAMSHA256:
		return &scramMech{a: a, remote: remote}, nil
	}
	return nil, ErrUnsupported
}

// DecodeResponse decodes a client's base64 SASL line: "*" cancels
// (ErrCancelled), "=" is an empty response (RFC 4959 3).
func DecodeResponse(line string) ([]byte, error) {
	switch line {
	case "*":
		return nil, ErrCancelled
	case "=":
		return []byte{}, nil
	}
	// The decoder skips CR and LF; a line holding them is not base64.
	b, err := base64.StdEncoding.Strict().DecodeString(line)
	if err != nil || strings.ContainsAny(line, "\r\n") {
		return nil, fmt.Errorf("%w: bad base64", ErrMalformed)
	}
	return b, nil
}

// plainMech is RFC 4616: [authzid] NUL authcid NUL passwd.
type plainMech struct {
	a      *Authenticator
	remote netip.Addr
	acct   store.Account
}

func (m *plainMech) Next(ctx context.Context, resp []byte) ([]byte, bool, error) {
	if resp == nil {
		return []byte{}, false, nil
	}
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 {
		return nil, false, fmt.Errorf("%w: PLAIN needs three fields", ErrMalformed)
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	// Acting as another user is not offered: an authzid must name the
	// same account.
	if authz != "" && store.CanonicalAccountName(authz) != store.CanonicalAccountName(user) {
		return nil, false, m.a.fail(ctx, m.remote, store.CanonicalAccountName(user))
	}
	acct, err := m.a.Login(ctx, m.remote, user, pass)
	if err != nil {
		return nil, false, err
	}
	m.acct = acct
	return nil, true, nil
}

func (m *plainMech) Account() store.Account { return m.acct }

// loginMech is the obsolete but ubiquitous LOGIN mechanism: the server asks
// "Username:" then "Password:".
type loginMech struct {
	a      *Authenticator
	remote netip.Addr
	user   string
	step   int
	acct   store.Account
}

func (m *loginMech) Next(ctx context.Context, resp []byte) ([]byte, bool, error) {
	defer func() { m.step++ }()
	switch m.step {
	case 0:
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		m.step++ // the initial response was the user name
		fallthrough
	case 1:
		m.user = string(resp)
		return []byte("Password:"), false, nil
	case 2:
		acct, err := m.a.Login(ctx, m.remote, m.user, string(resp))
		if err != nil {
			return nil, false, err
		}
		m.acct = acct
		return nil, true, nil
	}
	return nil, false, fmt.Errorf("%w: LOGIN exchange is over", ErrMalformed)
}

func (m *loginMech) Account() store.Account { return m.acct }

// scramMech is SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding.
type scramMech struct {
	a      *Authenticator
	remote netip.Addr
	done   bool

	name            string
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	nonce           string
	keys            scramKeys
	acct            store.Account // zero ID when the account does not exist
}

func (m *scramMech) Next(ctx context.Context, resp []byte) ([]byte, bool, error) {
	switch {
	case m.done:
		return nil, false, fmt.Errorf("%w: SCRAM exchange is over", ErrMalformed)
	case m.serverFirst != "":
		return m.clientFinal(ctx, string(resp))
	case resp == nil:
		return []byte{}, false, nil // ask for the client-first message
	}
	return m.clientFirst(ctx, string(resp))
}

func (m *scramMech) Account() store.Account { return m.acct }

// clientFirst reads "gs2-header client-first-bare" (RFC 5802 7) and
// answers with the server-first message.
func (m *scramMech) clientFirst(ctx context.Context, msg string) ([]byte, bool, error) {
	bad := func(why string) ([]byte, bool, error) {
		return nil, false, fmt.Errorf("%w: SCRAM client-first: %s", ErrMalformed, why)
	}
	// gs2-cbind-flag "," [authzid] ","
	cb, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return bad("no gs2 header")
	}
	switch {
	case cb == "n", cb == "y":
	case strings.HasPrefix(cb, "p="):
		return bad("channel binding is not offered")
	default:
		return bad("bad channel binding flag")
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return bad("no gs2 header end")
	}
	m.gs2Header = cb + "," + authz + ","
	m.clientFirstBare = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return bad("needs n= and r=")
	}
	name, err := unescapeSASLName(attrs[0][2:])
	if err != nil {
		return nil, false, err
	}
	if authz != "" {
		az, err := unescapeSASLName(strings.TrimPrefix(authz, "a="))
		if err != nil || !strings.HasPrefix(authz, "a=") || store.CanonicalAccountName(az) != store.CanonicalAccountName(name) {
			return bad("authorization identity must be the user")
		}
	}
	clientNonce := attrs[1][2:]
	if clientNonce == "" {
		return bad("empty nonce")
	}
	m.name = store.CanonicalAccountName(name)
	if err := m.a.checkLockout(ctx, m.remote, m.name); err != nil {
		return nil, false, err
	}
	acct, err := m.a.store.LookupAccount(ctx, m.name)
	switch {
	case errors.Is(err, store.ErrNoAccount):
	case err != nil:
		return nil, false, fmt.Errorf("look up %s: %w", m.name, err)
	default:
		if k, err := decodeSCRAMKeys(acct.Credentials.SCRAMSHA256); err == nil {
			m.acct, m.keys = acct, k
		}
	}
	if m.acct.ID == 0 {
		// Unknown user (or no SCRAM keys): continue with a salt derived
		// from a secret so repeated attempts see the same salt, and fail
		// at the proof like a wrong password would.
		// The iteration count is the one real accounts get, so the
		// server-first message does not give the unknown name away.
		m.keys = scramKeys{salt: hmacSHA256(m.a.secret, []byte(m.name))[:16], iterations: m.a.hasher.scramIterations()}
	}
	m.nonce = clientNonce + rand.Text()
	m.serverFirst = fmt.Sprintf("r=%s,s=%s,i=%d", m.nonce, base64.StdEncoding.EncodeToString(m.keys.salt), m.keys.iterations)
	return []byte(m.serverFirst), false, nil
}

// clientFinal checks "c=...,r=...,p=proof" and answers with "v=signature".
func (m *scramMech) clientFinal(ctx context.Context, msg string) ([]byte, bool, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return nil, false, fmt.Errorf("%w: SCRAM client-final without proof", ErrMalformed)
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || attrs[0] != "c="+base64.StdEncoding.EncodeToString([]byte(m.gs2Header)) || attrs[1] != "r="+m.nonce {
		return nil, false, fmt.Errorf("%w: SCRAM client-final does not match", ErrMalformed)
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil || len(proof) != sha256.Size || m.acct.ID == 0 {
		return nil, false, m.a.fail(ctx, m.remote, m.name)
	}
	authMessage := []byte(m.clientFirstBare + "," + m.serverFirst + "," + withoutProof)
	clientSig := hmacSHA256(m.keys.storedKey, authMessage)
	clientKey := make([]byte, sha256.Size)
	for i := range clientKey {
		clientKey[i] = proof[i] ^ clientSig[i]
	}
	stored := sha256.Sum256(clientKey)
	if subtle.ConstantTimeCompare(stored[:], m.keys.storedKey) != 1 {
		return nil, false, m.a.fail(ctx, m.remote, m.name)
	}
	m.a.succeeded(m.remote, m.name)
	m.done = true
	serverSig := hmacSHA256(m.keys.serverKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), true, nil
}

// unescapeSASLName undoes RFC 5802 5.1's "=2C" and "=3D".
func unescapeSASLName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("%w: bad escape in SCRAM name", ErrMalformed)
		}
		i += 2
	}
	return b.String(), nil
}
