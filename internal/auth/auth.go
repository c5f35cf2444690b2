// Package auth checks who a client is: password hashing and verification,
// the SASL server mechanisms PLAIN (RFC 4616), LOGIN
// (draft-murchison-sasl-login) and SCRAM-SHA-256 (RFC 5802, RFC 7677), and
// login throttling shared by every protocol.
//
// An unknown user and a wrong password get the same error after the same
// work, so a client cannot tell which names exist.
package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
)

// Errors of authentication.
var (
	// ErrAuthFailed is the one answer to a wrong name or password.
	ErrAuthFailed = errors.New("authentication failed")
	// ErrLockedOut means too many failures from this address or for this
	// account: logins are refused for a while, whatever the password.
	ErrLockedOut = errors.New("too many failed logins; try again later")
	// ErrMalformed is a SASL exchange that does not follow the mechanism.
	ErrMalformed = errors.New("malformed authentication exchange")
	// ErrCancelled means the client cancelled the exchange ("*").
	ErrCancelled = errors.New("authentication cancelled")
	// ErrUnsupported is a mechanism the server does not offer.
	ErrUnsupported = errors.New("unsupported authentication mechanism")
)

// Authenticator checks credentials against a store.
type Authenticator struct {
	store    store.Store
	hasher   Hasher
	throttle *throttle
	log      *slog.Logger

	// dummy is verified when the account does not exist, so that answer
	// takes as long as a wrong password.
	dummy store.Credentials
	// secret makes SCRAM salts for unknown users stable but unguessable:
	// the store's scramSecretName secret when it keeps secrets.
	secret []byte

	// sleep waits before a failure answer; tests replace it.
	sleep func(context.Context, time.Duration) error
	// checkPassword is CheckPassword; tests replace it to see which hash
	// a login verified.
	checkPassword func(hash, password string) (bool, error)
	// checking holds a token for each password check running; its
	// capacity is config.Auth.ConcurrentChecks.
	checking chan struct{}

	// Observe, if set before use, hears the result of every password
	// check: "ok", "failed" or "locked_out" (for metrics).
	Observe func(result string)
}

func (a *Authenticator) observe(result string) {
	if a.Observe != nil {
		a.Observe(result)
	}
}

// succeeded records a good login.
func (a *Authenticator) succeeded(remote netip.Addr, name string) {
	a.throttle.succeeded(remote, name)
	a.observe("ok")
}

// scramSecretName names the store secret (store.SecretKeeper) behind the
// SCRAM salts of unknown names.
const scramSecretName = "scram-unknown-user"

// secretTimeout bounds New's wait for the store's secret.
const secretTimeout = time.Minute

// New returns an Authenticator over st. log may be nil.
//
// When st keeps secrets (store.SecretKeeper), the secret behind the SCRAM
// salts of unknown names is the store's, so every process and node on the
// store, before and after a restart, gives an unknown name the same salt,
// as a real account's stays the same; New reads it, waiting for the store
// up to a minute. Otherwise New makes one, which lasts as long as the
// Authenticator.
func New(cfg config.Auth, st store.Store, log *slog.Logger) (*Authenticator, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := NewHasher(cfg)
	var secret []byte
	if k, ok := st.(store.SecretKeeper); ok {
		ctx, cancel := context.WithTimeout(context.Background(), secretTimeout)
		defer cancel()
		var err error
		if secret, err = k.Secret(ctx, scramSecretName); err != nil {
			return nil, fmt.Errorf("SCRAM secret: %w", err)
		}
	} else {
		secret = make([]byte, store.SecretSize)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
	}
	dummy, err := h.Credentials(rand.Text())
	if err != nil {
		return nil, err
	}
	return &Authenticator{
		store:    st,
		hasher:   h,
		throttle: newThrottle(cfg.FailureDelay.D(), cfg.MaxFailureDelay.D(), cfg.LockoutAfter, cfg.LockoutDuration.D()),
		log:      log,
		dummy:    dummy,
		secret:   secret,
		sleep:    sleepCtx,

		checkPassword: CheckPassword,
		checking:      make(chan struct{}, cmp.Or(cfg.ConcurrentChecks, runtime.NumCPU())),
	}, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Login checks a name and plaintext password from a client at remote.
// It returns ErrAuthFailed, ErrLockedOut, a store error that
// store.IsTemporary recognises, or ctx's error if ctx ends first.
func (a *Authenticator) Login(ctx context.Context, remote netip.Addr, name, password string) (store.Account, error) {
	name = store.CanonicalAccountName(name)
	if err := a.checkLockout(ctx, remote, name); err != nil {
		return store.Account{}, err
	}
	acct, err := a.store.LookupAccount(ctx, name)
	cred := acct.Credentials
	switch {
	case errors.Is(err, store.ErrNoAccount):
		cred = a.dummy
	case err != nil:
		return store.Account{}, fmt.Errorf("look up %s: %w", name, err)
	}
	// A burst of logins queues for the checking slots rather than
	// holding a hash's memory each.
	select {
	case a.checking <- struct{}{}:
	case <-ctx.Done():
		return store.Account{}, ctx.Err()
	}
	ok, err := a.checkPassword(cred.PasswordHash, password)
	<-a.checking
	if err != nil {
		a.log.Error("stored password hash unusable", "account", name, "err", err)
	}
	if !ok || acct.ID == 0 {
		return store.Account{}, a.fail(ctx, remote, name)
	}
	a.succeeded(remote, name)
	return acct, nil
}

func (a *Authenticator) checkLockout(ctx context.Context, remote netip.Addr, name string) error {
	if !a.throttle.lockedOut(remote, name) {
		return nil
	}
	a.log.Info("login refused: locked out", "remote", remote, "account", name)
	a.observe("locked_out")
	if err := a.sleep(ctx, a.throttle.base); err != nil {
		return err
	}
	return ErrLockedOut
}

// fail records a failed login, waits the throttle's delay and returns
// ErrAuthFailed.
func (a *Authenticator) fail(ctx context.Context, remote netip.Addr, name string) error {
	d := a.throttle.failed(remote, name)
	a.observe("failed")
	a.log.Info("login failed", "remote", remote, "account", name, "delay", d)
	if err := a.sleep(ctx, d); err != nil {
		return err
	}
	return ErrAuthFailed
}

// Hasher returns the hasher for new passwords.
func (a *Authenticator) Hasher() Hasher { return a.hasher }
