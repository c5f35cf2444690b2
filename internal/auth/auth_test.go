package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
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

// TestChecksBounded: no more password hashes are verified at once than
// auth.concurrent_checks; a login beyond them waits, and gives up when its
// context ends, without starting a check.
func TestChecksBounded(t *testing.T) {
	cfg := testConfig()
	cfg.ConcurrentChecks = 1
	f := newFixture(t, cfg)
	entered, release := make(chan string, 2), make(chan struct{})
	f.auth.checkPassword = func(hash, password string) (bool, error) {
		entered <- password
		if password == "s3cret" {
			<-release
		}
		return CheckPassword(hash, password)
	}
	first := make(chan error)
	go func() {
		_, err := f.auth.Login(context.Background(), client1, "alice@example.org", "s3cret")
		first <- err
	}()
	if got := <-entered; got != "s3cret" {
		t.Fatalf("first check was of %q", got)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.auth.Login(gone, client2, "alice@example.org", "second"); !errors.Is(err, context.Canceled) {
		t.Errorf("login waiting for a check, its context ended: %v, want context.Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first login: %v", err)
	}
	select {
	case got := <-entered:
		t.Errorf("a check of %q ran beyond the one allowed", got)
	default:
	}
	if _, err := f.auth.Login(context.Background(), client2, "alice@example.org", "s3cret"); err != nil {
		t.Errorf("login once the check was free: %v", err)
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
	// Locked out: even the right password is refused, from any address
	// the account has not logged in from (TestKnownAddressSpared), and so
	// is any account from the guessing address.
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

// TestKnownAddressSpared: an address the account logged in from lately is
// not refused by the account's lockout, so a guesser elsewhere cannot lock
// the owner out of their usual devices; every other address still is, and
// the known address still has its own lockout. Each case runs its steps
// in order on a fresh Authenticator (lockout after 3 failures).
func TestKnownAddressSpared(t *testing.T) {
	var (
		home      = netip.MustParseAddr("2001:db8:1::10")
		homeToo   = netip.MustParseAddr("2001:db8:1::20") // the same /64
		homeNext  = netip.MustParseAddr("2001:db8:2::10") // the next /64
		guesser   = netip.MustParseAddr("198.51.100.7")
		newDevice = netip.MustParseAddr("203.0.113.9")
	)
	const alice, good, wrong = "alice@example.org", "s3cret", "guess"
	type step struct {
		at       time.Duration // since the case began
		from     netip.Addr
		name, pw string
		want     error
	}
	// owner logs in from home; guesses are three failures from guesser.
	owner := step{0, home, alice, good, nil}
	guesses := func(at time.Duration, name string) []step {
		return []step{{at, guesser, name, wrong, ErrAuthFailed}, {at, guesser, name, wrong, ErrAuthFailed}, {at, guesser, name, wrong, ErrAuthFailed}}
	}
	then := func(steps ...[]step) []step { return slices.Concat(steps...) }
	tests := []struct {
		name  string
		steps []step
	}{
		{"the owner's address gets in through the lockout", then(
			[]step{owner}, guesses(time.Minute, alice), []step{
				{time.Minute, guesser, alice, good, ErrLockedOut},   // the guesser's address and the account are locked
				{time.Minute, newDevice, alice, good, ErrLockedOut}, // a new address meets the account's lockout
				{time.Minute, home, alice, good, nil},
				{time.Minute, homeToo, alice, good, nil},            // IPv6 by /64, as the throttle counts
				{time.Minute, homeNext, alice, good, ErrLockedOut},  // but not the next /64
				{time.Minute, newDevice, alice, good, ErrLockedOut}, // the owner's login did not lift it
				{time.Minute, home, alice, wrong, ErrAuthFailed},    // a failure, not a lockout...
				{time.Minute, newDevice, alice, good, ErrLockedOut}, // ...that counts as usual
				{2 * time.Minute, home, alice, good, nil},           // and the owner still gets in
				{12 * time.Minute, newDevice, alice, good, nil},     // the lockout ends with its window
			})},
		{"the owner's login does not reset the account's count", then(
			guesses(0, alice)[1:], []step{owner}, guesses(0, alice)[2:], []step{
				{0, newDevice, alice, good, ErrLockedOut},
				{0, home, alice, good, nil},
			})},
		{"without a login, home is a new address", then(
			guesses(0, alice), []step{
				{0, home, alice, good, ErrLockedOut},
			})},
		{"a known address keeps its own lockout", then(
			[]step{owner}, []step{
				{0, home, alice, wrong, ErrAuthFailed},
				{0, home, alice, wrong, ErrAuthFailed},
				{0, home, alice, wrong, ErrAuthFailed},
				{0, home, alice, good, ErrLockedOut},
				{0, home, "bob@example.org", "x", ErrLockedOut},
			})},
		{"known for one account, not for another", then(
			[]step{owner}, guesses(0, "nobody@example.org"), []step{
				{0, home, "nobody@example.org", "x", ErrLockedOut}, // as for a name elsewhere
				{0, home, alice, good, nil},
			})},
		{"a failed login makes no address known", then(
			[]step{{0, home, alice, wrong, ErrAuthFailed}}, guesses(0, alice)[1:], []step{
				{0, home, alice, good, ErrLockedOut},
			})},
		{"known addresses are forgotten after knownFor", then(
			[]step{owner}, guesses(knownFor, alice), []step{
				{knownFor, home, alice, good, ErrLockedOut},
			})},
		{"each login renews it", then(
			[]step{owner, {knownFor / 2, home, alice, good, nil}}, guesses(knownFor, alice), []step{
				{knownFor, home, alice, good, nil},
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testConfig())
			start := time.Now()
			var at time.Duration
			f.auth.throttle.now = func() time.Time { return start.Add(at) }
			for i, s := range tt.steps {
				at = s.at
				_, err := f.auth.Login(context.Background(), s.from, s.name, s.pw)
				if !errors.Is(err, s.want) || (err == nil) != (s.want == nil) {
					t.Errorf("step %d: %s from %s with %q: %v, want %v", i+1, s.name, s.from, s.pw, err, s.want)
				}
			}
		})
	}
}

// TestKnownAddressSCRAM: SCRAM makes an address known and spares it the
// account's lockout as a password login does, and both share what they
// remember.
func TestKnownAddressSCRAM(t *testing.T) {
	f := newFixture(t, testConfig())
	home, guesser, newDevice := client1, client2, netip.MustParseAddr("203.0.113.9")
	scram := func(from netip.Addr, pw string) error {
		m, _ := f.auth.NewMechanism(SCRAMSHA256, from)
		_, _, err := scramClient(t, m, "alice@example.org", pw)
		return err
	}
	if err := scram(home, "s3cret"); err != nil {
		t.Fatalf("the owner's first login: %v", err)
	}
	for range 3 {
		if err := scram(guesser, "guess"); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("a guess: %v", err)
		}
	}
	if err := scram(newDevice, "s3cret"); !errors.Is(err, ErrLockedOut) {
		t.Errorf("SCRAM from a new address: %v, want %v", err, ErrLockedOut)
	}
	if err := scram(home, "s3cret"); err != nil {
		t.Errorf("SCRAM from the owner's address: %v", err)
	}
	if _, err := f.auth.Login(context.Background(), home, "alice@example.org", "s3cret"); err != nil {
		t.Errorf("password login from the address SCRAM made known: %v", err)
	}
}

func TestThrottleBounded(t *testing.T) {
	th := newThrottle(time.Millisecond, time.Second, 5, time.Hour)
	for i := range maxEntries + 10 {
		th.failed(floodAddr(i), fmt.Sprint(i))
	}
	if n := len(th.entries); n > maxEntries {
		t.Errorf("throttle holds %d entries, more than %d", n, maxEntries)
	}
	// A flood of fresh names and addresses does not lift a lockout.
	for range 5 {
		th.failed(client1, "victim")
	}
	for i := range 2 * maxEntries {
		th.failed(floodAddr(i), fmt.Sprint("flood", i))
	}
	if !th.lockedOut(client2, "victim") || !th.lockedOut(client1, "someone") {
		t.Error("a flood of failures for other names and addresses lifted a lockout")
	}
	for i := range 20 {
		if d := th.failed(client1, "x"); d > time.Second {
			t.Errorf("failure %d: delay %v above the maximum", i+1, d)
		}
	}
	// Failures make no address known.
	if th.known.n != 0 || len(th.known.accounts) != 0 {
		t.Errorf("failures alone made %d known addresses for %d accounts", th.known.n, len(th.known.accounts))
	}
}

// TestKnownAddressesBounded: what the throttle remembers of good logins is
// bounded per account and in all, however many logins come from however
// many addresses, and what it forgets first is the least recent.
func TestKnownAddressesBounded(t *testing.T) {
	th := newThrottle(time.Millisecond, time.Second, 5, time.Hour)
	start := time.Now()
	var at time.Duration
	th.now = func() time.Time { at += time.Second; return start.Add(at) }
	known := func(from netip.Addr, name string) bool { return th.known.has(name, ipKey(from), th.now()) }
	check := func() {
		t.Helper()
		k := &th.known
		n := 0
		for e := k.lru.Front(); e != nil; e = e.Next() {
			acct := e.Value.(*knownAccount)
			if len(acct.addrs) > knownPerAccount {
				t.Fatalf("%s has %d known addresses, more than %d", acct.name, len(acct.addrs), knownPerAccount)
			}
			n += len(acct.addrs)
		}
		if n != k.n || n > maxKnown || len(k.accounts) != k.lru.Len() {
			t.Fatalf("%d known addresses (counted %d, at most %d) for %d accounts (%d in the list)", n, k.n, maxKnown, len(k.accounts), k.lru.Len())
		}
	}

	// Logging in again from a known address takes no more room.
	for range 3 {
		for i := range knownPerAccount {
			th.succeeded(floodAddr(i), "roamer")
		}
	}
	check()
	if th.known.n != knownPerAccount || !known(floodAddr(0), "roamer") {
		t.Errorf("%d known addresses after logins from %d, three times over", th.known.n, knownPerAccount)
	}
	// One account from ten times as many addresses as it keeps: the
	// latest are known.
	for i := range 10 * knownPerAccount {
		th.succeeded(floodAddr(i), "roamer")
	}
	check()
	if !known(floodAddr(10*knownPerAccount-1), "roamer") || !known(floodAddr(9*knownPerAccount), "roamer") || known(floodAddr(9*knownPerAccount-1), "roamer") {
		t.Error("the account does not know its latest addresses, or knows an older one")
	}
	// Many accounts, each from three addresses, more than are kept in
	// all; the victim logs in again on the way and is kept, the accounts
	// least recently logged in go.
	th.succeeded(client1, "victim")
	const flood = 3 * maxKnown / 2
	for i := range flood {
		th.succeeded(floodAddr(i), fmt.Sprint("flood", i/3))
		if i == maxKnown {
			th.succeeded(client1, "victim")
		}
	}
	check()
	if !known(client1, "victim") || !known(floodAddr(flood-1), fmt.Sprint("flood", (flood-1)/3)) {
		t.Error("an account that logged in lately was forgotten")
	}
	if known(floodAddr(10*knownPerAccount-1), "roamer") || known(floodAddr(0), "flood0") {
		t.Error("the accounts least recently logged in were kept")
	}
	// Known addresses expire.
	at += knownFor
	if known(client1, "victim") {
		t.Error("an address is still known knownFor after the last login from it")
	}
}

// floodAddr is the i-th address of 10.0.0.0/8.
func floodAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
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
