package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
)

// accounts is a store with nothing but an account directory, which is all
// the authenticator reads.
type accounts struct {
	store.Store
	byName map[string]store.Account
}

func (s *accounts) LookupAccount(_ context.Context, name string) (store.Account, error) {
	a, ok := s.byName[store.CanonicalAccountName(name)]
	if !ok {
		return store.Account{}, store.ErrNoAccount
	}
	return a, nil
}

// testConfig is cheap to hash so tests stay fast.
func testConfig() config.Auth {
	c := config.Default().Auth
	c.Argon2Time, c.Argon2Memory = 1, 64
	c.LockoutAfter = 3
	return c
}

type fixture struct {
	auth   *Authenticator
	sleeps []time.Duration
}

func newFixture(t testing.TB, cfg config.Auth) *fixture {
	t.Helper()
	cred, err := NewHasher(cfg).Credentials("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	st := &accounts{byName: map[string]store.Account{
		"alice@example.org": {ID: 7, Name: "alice@example.org", Credentials: cred},
	}}
	a, err := New(cfg, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{auth: a}
	a.sleep = func(_ context.Context, d time.Duration) error { f.sleeps = append(f.sleeps, d); return nil }
	return f
}

var (
	client1 = netip.MustParseAddr("192.0.2.1")
	client2 = netip.MustParseAddr("192.0.2.2")
)

func TestPasswordSchemes(t *testing.T) {
	for _, scheme := range []string{"argon2id", "bcrypt"} {
		t.Run(scheme, func(t *testing.T) {
			cfg := testConfig()
			cfg.Scheme, cfg.BcryptCost = scheme, 4
			cred, err := NewHasher(cfg).Credentials("pässword")
			if err != nil {
				t.Fatal(err)
			}
			for pw, want := range map[string]bool{"pässword": true, "password": false, "": false} {
				if got, err := CheckPassword(cred.PasswordHash, pw); got != want || err != nil {
					t.Errorf("CheckPassword(%q) = %v, %v; want %v", pw, got, err, want)
				}
			}
		})
	}
	for _, bad := range []string{"", "plain", "$argon2id$v=19$m=x$a$b", "$argon2id$v=19$m=64,t=1,p=1$!!$!!"} {
		if ok, err := CheckPassword(bad, "x"); ok || err == nil {
			t.Errorf("CheckPassword(%q) = %v, %v; want false and an error", bad, ok, err)
		}
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t, testConfig())
	ctx := context.Background()
	acct, err := f.auth.Login(ctx, client1, "Alice@Example.ORG", "s3cret")
	if err != nil || acct.ID != 7 {
		t.Fatalf("good login = %+v, %v", acct, err)
	}
	if len(f.sleeps) != 0 {
		t.Errorf("a good login waited %v", f.sleeps)
	}
	// A wrong password and an unknown user are the same error.
	_, errWrong := f.auth.Login(ctx, client1, "alice@example.org", "guess")
	_, errUnknown := f.auth.Login(ctx, client2, "nobody@example.org", "guess")
	if !errors.Is(errWrong, ErrAuthFailed) || !errors.Is(errUnknown, ErrAuthFailed) || errWrong.Error() != errUnknown.Error() {
		t.Fatalf("wrong password: %v; unknown user: %v", errWrong, errUnknown)
	}
}

// TestUnknownUserHashesOnce: a login for a name with no account verifies
// one password hash of the configured scheme and cost, as a wrong password
// does, so the two take the same time without any test having to time them.
func TestUnknownUserHashesOnce(t *testing.T) {
	for _, scheme := range []string{"argon2id", "bcrypt"} {
		t.Run(scheme, func(t *testing.T) {
			cfg := testConfig()
			cfg.Scheme, cfg.BcryptCost = scheme, 4
			f := newFixture(t, cfg)
			var hashes []string
			f.auth.checkPassword = func(hash, password string) (bool, error) {
				hashes = append(hashes, hash)
				return CheckPassword(hash, password)
			}
			ctx := context.Background()
			f.auth.Login(ctx, client1, "alice@example.org", "guess")
			f.auth.Login(ctx, client2, "nobody@example.org", "guess")
			if len(hashes) != 2 {
				t.Fatalf("%d hashes verified for a wrong password and an unknown user, want 2", len(hashes))
			}
			// The parameters, all but the salt and the key: $2a$04 for
			// bcrypt, $argon2id$v=19$m=64,t=1,p=1 for argon2id.
			fields := map[string]int{"bcrypt": 3, "argon2id": 4}[scheme]
			params := func(h string) string { return strings.Join(strings.SplitN(h, "$", fields+1)[:fields], "$") }
			if params(hashes[0]) != params(hashes[1]) {
				t.Errorf("wrong password verified %q, unknown user %q: other parameters", params(hashes[0]), params(hashes[1]))
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	cfg := testConfig()
	f := newFixture(t, cfg)
	ctx := context.Background()
	base := cfg.FailureDelay.D()
	for i := range 3 {
		if _, err := f.auth.Login(ctx, client1, "alice@example.org", "guess"); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if want := []time.Duration{base, 2 * base, 4 * base}; fmt.Sprint(f.sleeps) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", f.sleeps, want)
	}
	// Locked out: even the right password is refused, from any address,
	// and so is any account from the guessing address.
	if _, err := f.auth.Login(ctx, client2, "alice@example.org", "s3cret"); !errors.Is(err, ErrLockedOut) {
		t.Errorf("account lockout: %v", err)
	}
	if _, err := f.auth.Login(ctx, client1, "bob@example.org", "x"); !errors.Is(err, ErrLockedOut) {
		t.Errorf("address lockout: %v", err)
	}
	// The lockout ends with its window.
	f.auth.throttle.now = func() time.Time { return time.Now().Add(cfg.LockoutDuration.D()) }
	if _, err := f.auth.Login(ctx, client1, "alice@example.org", "s3cret"); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestThrottleBounded(t *testing.T) {
	th := newThrottle(time.Millisecond, time.Second, 5, time.Hour)
	for i := range maxEntries + 10 {
		th.failed(acctKey(fmt.Sprint(i)))
	}
	if n := len(th.entries); n > maxEntries {
		t.Errorf("throttle holds %d entries, more than %d", n, maxEntries)
	}
	// A flood of fresh names does not lift a lockout.
	for range 5 {
		th.failed("acct:victim")
	}
	for i := range 2 * maxEntries {
		th.failed(acctKey(fmt.Sprint("flood", i)))
	}
	if !th.lockedOut("acct:victim") {
		t.Error("a flood of failures for other names lifted a lockout")
	}
	if d := th.failed("x", "x", "x"); d > time.Second {
		t.Errorf("delay %v above the maximum", d)
	}
}

func TestIPKeyGroupsIPv6(t *testing.T) {
	a := ipKey(netip.MustParseAddr("2001:db8::1"))
	b := ipKey(netip.MustParseAddr("2001:db8::ffff"))
	c := ipKey(netip.MustParseAddr("2001:db8:0:1::1"))
	if a != b || a == c {
		t.Errorf("keys %q %q %q: want the first two equal and the third different", a, b, c)
	}
	if ipKey(netip.MustParseAddr("::ffff:192.0.2.1")) != ipKey(client1) {
		t.Error("mapped IPv4 differs from IPv4")
	}
}

// exchange runs a mechanism over a scripted list of client responses and
// returns the challenges.
func exchange(t *testing.T, m Mechanism, responses ...[]byte) ([]string, bool, error) {
	t.Helper()
	var challenges []string
	for _, r := range responses {
		c, done, err := m.Next(context.Background(), r)
		if err != nil || done {
			if c != nil {
				challenges = append(challenges, string(c))
			}
			return challenges, done, err
		}
		challenges = append(challenges, string(c))
	}
	return challenges, false, nil
}

func TestPlainAndLogin(t *testing.T) {
	tests := []struct {
		mech       string
		responses  []string // "nil" for no initial response
		challenges []string
		done       bool
		err        error
	}{
		{PLAIN, []string{"\x00alice@example.org\x00s3cret"}, nil, true, nil},
		{PLAIN, []string{"nil", "alice@example.org\x00alice@example.org\x00s3cret"}, []string{""}, true, nil},
		{PLAIN, []string{"\x00alice@example.org\x00wrong"}, nil, false, ErrAuthFailed},
		{PLAIN, []string{"bob@example.org\x00alice@example.org\x00s3cret"}, nil, false, ErrAuthFailed},
		{PLAIN, []string{"alice@example.org s3cret"}, nil, false, ErrMalformed},
		{LOGIN, []string{"nil", "alice@example.org", "s3cret"}, []string{"Username:", "Password:"}, true, nil},
		{LOGIN, []string{"alice@example.org", "s3cret"}, []string{"Password:"}, true, nil},
		{LOGIN, []string{"nil", "alice@example.org", "nope"}, []string{"Username:", "Password:"}, false, ErrAuthFailed},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s-%d", tt.mech, i), func(t *testing.T) {
			f := newFixture(t, testConfig())
			m, err := f.auth.NewMechanism(strings.ToLower(tt.mech), client1)
			if err != nil {
				t.Fatal(err)
			}
			var rs [][]byte
			for _, r := range tt.responses {
				if r == "nil" {
					rs = append(rs, nil)
				} else {
					rs = append(rs, []byte(r))
				}
			}
			ch, done, err := exchange(t, m, rs...)
			if !errors.Is(err, tt.err) || done != tt.done || fmt.Sprint(ch) != fmt.Sprint(tt.challenges) {
				t.Fatalf("got challenges %q done %v err %v; want %q %v %v", ch, done, err, tt.challenges, tt.done, tt.err)
			}
			if done && m.Account().ID != 7 {
				t.Errorf("account %+v", m.Account())
			}
		})
	}
}

// scramClient is the client side of RFC 5802, written from the RFC
// independently of the server code above.
func scramClient(t *testing.T, m Mechanism, user, password string) (string, bool, error) {
	t.Helper()
	ctx := context.Background()
	clientFirstBare := "n=" + user + ",r=fyko+d2lbbFgONRv9qkxdawL"
	sf, done, err := m.Next(ctx, []byte("n,,"+clientFirstBare))
	if err != nil || done {
		return "", done, err
	}
	var nonce, salt string
	var iter int
	for _, attr := range strings.Split(string(sf), ",") {
		switch {
		case strings.HasPrefix(attr, "r="):
			nonce = attr[2:]
		case strings.HasPrefix(attr, "s="):
			salt = attr[2:]
		case strings.HasPrefix(attr, "i="):
			fmt.Sscan(attr[2:], &iter)
		}
	}
	if !strings.HasPrefix(nonce, "fyko+d2lbbFgONRv9qkxdawL") || len(nonce) <= 24 {
		t.Fatalf("server nonce %q does not extend the client's", nonce)
	}
	saltBytes, _ := base64.StdEncoding.DecodeString(salt)
	keys, err := deriveSCRAMKeys(password, saltBytes, iter)
	if err != nil {
		t.Fatal(err)
	}
	withoutProof := "c=biws,r=" + nonce
	authMessage := clientFirstBare + "," + string(sf) + "," + withoutProof
	// ClientKey = HMAC(SaltedPassword, "Client Key"); we recover it from
	// StoredKey's preimage by recomputing.
	salted, _ := pbkdf2Key(password, saltBytes, iter)
	clientKey := hmacSHA256(salted, []byte("Client Key"))
	if sum := sha256.Sum256(clientKey); string(sum[:]) != string(keys.storedKey) {
		t.Fatal("StoredKey is not H(ClientKey)")
	}
	sig := hmacSHA256(keys.storedKey, []byte(authMessage))
	proof := make([]byte, len(sig))
	for i := range sig {
		proof[i] = clientKey[i] ^ sig[i]
	}
	final, done, err := m.Next(ctx, []byte(withoutProof+",p="+base64.StdEncoding.EncodeToString(proof)))
	if err != nil {
		return "", done, err
	}
	wantV := "v=" + base64.StdEncoding.EncodeToString(hmacSHA256(keys.serverKey, []byte(authMessage)))
	if string(final) != wantV {
		t.Errorf("server-final %q, want %q", final, wantV)
	}
	return string(final), done, nil
}

func TestSCRAM(t *testing.T) {
	f := newFixture(t, testConfig())
	m, _ := f.auth.NewMechanism(SCRAMSHA256, client1)
	if _, done, err := scramClient(t, m, "alice@example.org", "s3cret"); err != nil || !done {
		t.Fatalf("good SCRAM: done %v err %v", done, err)
	}
	if m.Account().ID != 7 {
		t.Errorf("account %+v", m.Account())
	}
	if _, _, err := m.Next(context.Background(), []byte("more")); !errors.Is(err, ErrMalformed) {
		t.Errorf("after the end: %v", err)
	}

	for _, user := range []string{"alice@example.org", "nobody@example.org"} {
		m, _ := f.auth.NewMechanism(SCRAMSHA256, client2)
		if _, done, err := scramClient(t, m, user, "wrong"); !errors.Is(err, ErrAuthFailed) || done {
			t.Errorf("%s with a wrong password: done %v err %v", user, done, err)
		}
	}

	for _, first := range []string{"p=tls-unique,,n=a,r=x", "n,,r=x", "x,,n=a,r=b", "n,a=bob,n=alice,r=x", "n,,n=a=4,r=x", "n"} {
		m, _ := f.auth.NewMechanism(SCRAMSHA256, client1)
		if _, _, err := m.Next(context.Background(), []byte(first)); !errors.Is(err, ErrMalformed) {
			t.Errorf("client-first %q: %v, want ErrMalformed", first, err)
		}
	}
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{"*", "", ErrCancelled},
		{"=", "", nil},
		{"AGFsaWNlAHB3", "\x00alice\x00pw", nil},
		{"not base64!", "", ErrMalformed},
	}
	for _, tt := range tests {
		got, err := DecodeResponse(tt.in)
		if !errors.Is(err, tt.err) || string(got) != tt.want {
			t.Errorf("DecodeResponse(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestMechanisms(t *testing.T) {
	if got := Mechanisms(false); fmt.Sprint(got) != "[SCRAM-SHA-256]" {
		t.Errorf("without plaintext: %v", got)
	}
	if !PlaintextAllowed(false, netip.MustParseAddr("127.0.0.1"), false) || PlaintextAllowed(false, client1, false) ||
		!PlaintextAllowed(true, client1, false) || !PlaintextAllowed(false, client1, true) {
		t.Error("PlaintextAllowed disagrees with its documentation")
	}
	f := newFixture(t, testConfig())
	if _, err := f.auth.NewMechanism("CRAM-MD5", client1); !errors.Is(err, ErrUnsupported) {
		t.Errorf("CRAM-MD5: %v", err)
	}
}

// FuzzSASL feeds arbitrary client responses to every mechanism: it must
// answer with a challenge or an error, never panic or succeed by accident.
func FuzzSASL(f *testing.F) {
	f.Add("PLAIN", "\x00alice@example.org\x00s3cret", "")
	f.Add("LOGIN", "alice@example.org", "s3cret")
	f.Add("SCRAM-SHA-256", "n,,n=alice@example.org,r=abc", "c=biws,r=abc,p=AAAA")
	f.Add("SCRAM-SHA-256", "y,a=alice@example.org,n=alice@example.org,r=x", "c=eSxhPWFsaWNlQGV4YW1wbGUub3JnLA==,r=,p=")
	// One Authenticator for every input: making one hashes a password,
	// which would make each run slow enough for the fuzzer to time out at
	// the end of -fuzztime. Without a lockout, failures only add delays
	// (recorded, not slept).
	cfg := testConfig()
	cfg.LockoutAfter = 0
	fx := newFixture(f, cfg)
	f.Fuzz(func(t *testing.T, mech, first, second string) {
		fx.sleeps = fx.sleeps[:0]
		m, err := fx.auth.NewMechanism(mech, client1)
		if err != nil {
			return
		}
		ctx := context.Background()
		for _, r := range []string{first, second, ""} {
			_, done, err := m.Next(ctx, []byte(r))
			if err != nil {
				return
			}
			if done && !(m.Account().ID == 7 && strings.Contains(first+second, "s3cret")) {
				t.Fatalf("%s authenticated %+v from %q, %q", mech, m.Account(), first, second)
			}
			if done {
				return
			}
		}
	})
}

// FuzzDecodeResponse checks that decoding never panics and that whatever
// decodes re-encodes to the same line.
func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{"*", "=", "AGFsaWNlAHB3", "====", "YQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		b, err := DecodeResponse(line)
		if err != nil || line == "=" {
			return
		}
		if again := base64.StdEncoding.EncodeToString(b); again != line {
			t.Fatalf("%q decoded to %q, which encodes as %q", line, b, again)
		}
	})
}

// TestSCRAMUnknownUserLooksReal: the server-first message for an unknown
// name carries the same iteration count as for a real account.
func TestSCRAMUnknownUserLooksReal(t *testing.T) {
	cfg := testConfig()
	cfg.SCRAMIterations = 5000
	f := newFixture(t, cfg)
	first := func(user string) string {
		m, _ := f.auth.NewMechanism(SCRAMSHA256, client1)
		sf, _, err := m.Next(context.Background(), []byte("n,,n="+user+",r=abc"))
		if err != nil {
			t.Fatal(err)
		}
		return string(sf[strings.LastIndex(string(sf), ",i="):])
	}
	if real, unknown := first("alice@example.org"), first("nobody@example.org"); real != unknown || real != ",i=5000" {
		t.Errorf("iterations: real account %q, unknown name %q", real, unknown)
	}
}

// TestPasswordPrepared: a password typed in another Unicode form, or with
// a no-break space, is the same password (RFC 8265 OpaqueString), for the
// hash and for SCRAM.
func TestPasswordPrepared(t *testing.T) {
	h := NewHasher(testConfig())
	cred, err := h.Credentials("caf\u00e9\u00a0latte") // precomposed é, no-break space
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := CheckPassword(cred.PasswordHash, "cafe\u0301 latte"); !ok || err != nil { // e + combining acute, space
		t.Errorf("the same password in another form: %v %v", ok, err)
	}
	keys, err := decodeSCRAMKeys(cred.SCRAMSHA256)
	if err != nil {
		t.Fatal(err)
	}
	again, err := deriveSCRAMKeys(preparePassword("cafe\u0301 latte"), keys.salt, keys.iterations)
	if err != nil || string(again.storedKey) != string(keys.storedKey) {
		t.Error("SCRAM keys differ for the same password in another form")
	}
}
