package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/secure/precis"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
)

// Hasher turns passwords into stored credentials with the configured cost.
type Hasher struct {
	cfg config.Auth
}

// NewHasher returns a Hasher for the scheme and costs in cfg.
func NewHasher(cfg config.Auth) Hasher { return Hasher{cfg: cfg} }

// Credentials derives the stored verifiers of a password: a hash for
// plaintext mechanisms and SCRAM-SHA-256 keys (RFC 5802 3, RFC 7677).
func (h Hasher) Credentials(password string) (store.Credentials, error) {
	password = preparePassword(password)
	var hash string
	var err error
	switch h.cfg.Scheme {
	case "bcrypt":
		var b []byte
		b, err = bcrypt.GenerateFromPassword([]byte(password), h.cfg.BcryptCost)
		hash = string(b)
	default:
		hash, err = h.argon2id(password)
	}
	if err != nil {
		return store.Credentials{}, fmt.Errorf("hash password: %w", err)
	}
	scram, err := newSCRAMKeys(password, h.scramIterations())
	if err != nil {
		return store.Credentials{}, err
	}
	return store.Credentials{PasswordHash: hash, SCRAMSHA256: scram.encode()}, nil
}

// scramIterations is the PBKDF2 count for new SCRAM verifiers: the
// configured one, at least RFC 7677's 4096.
func (h Hasher) scramIterations() int { return max(h.cfg.SCRAMIterations, 4096) }

// argon2id formats the hash in the PHC string format that Dovecot and
// libargon2 use: $argon2id$v=19$m=...,t=...,p=...$salt$hash.
func (h Hasher) argon2id(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	t, m, p := max(h.cfg.Argon2Time, 1), max(h.cfg.Argon2Memory, 8), max(h.cfg.Argon2Threads, 1)
	key := argon2.IDKey([]byte(password), salt, t, m, p, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, m, t, p,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("unrecognised password hash")

// preparePassword applies the PRECIS OpaqueString profile (RFC 8265 4.2,
// the successor of SASLprep that RFC 5802 2.2 asks SCRAM to use), so the
// same password typed in another Unicode form or with another kind of
// space works with every mechanism. A string the profile refuses is used
// as it is.
func preparePassword(password string) string {
	if p, err := precis.OpaqueString.String(password); err == nil {
		return p
	}
	return password
}

// CheckPassword reports whether password matches the stored hash, in time
// that depends on the hash's cost but not on where the mismatch is.
func CheckPassword(hash, password string) (bool, error) {
	password = preparePassword(password)
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		return checkArgon2id(hash, password)
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		return err == nil, err
	}
	return false, errBadHash
}

func checkArgon2id(hash, password string) (bool, error) {
	// $argon2id$v=19$m=19456,t=2,p=1$salt$key
	fields := strings.Split(hash, "$")
	if len(fields) != 6 || fields[2] != "v="+strconv.Itoa(argon2.Version) {
		return false, errBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(fields[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || t == 0 || p == 0 || m > 4<<20 {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(fields[4])
	want, err2 := b64.DecodeString(fields[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// scramKeys are the SCRAM-SHA-256 verifiers kept instead of the password.
type scramKeys struct {
	salt       []byte
	iterations int
	storedKey  []byte
	serverKey  []byte
}

func newSCRAMKeys(password string, iterations int) (scramKeys, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return scramKeys{}, err
	}
	return deriveSCRAMKeys(password, salt, iterations)
}

// deriveSCRAMKeys computes RFC 5802 3's SaltedPassword, StoredKey and
// ServerKey.
func deriveSCRAMKeys(password string, salt []byte, iterations int) (scramKeys, error) {
	salted, err := pbkdf2Key(password, salt, iterations)
	if err != nil {
		return scramKeys{}, fmt.Errorf("scram keys: %w", err)
	}
	clientKey := hmacSHA256(salted, []byte("Client Key"))
	stored := sha256.Sum256(clientKey)
	return scramKeys{
		salt:       salt,
		iterations: iterations,
		storedKey:  stored[:],
		serverKey:  hmacSHA256(salted, []byte("Server Key")),
	}, nil
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// encode writes the keys as "iterations$salt$storedkey$serverkey", base64.
func (k scramKeys) encode() string {
	b64 := base64.StdEncoding
	return strconv.Itoa(k.iterations) + "$" + b64.EncodeToString(k.salt) + "$" +
		b64.EncodeToString(k.storedKey) + "$" + b64.EncodeToString(k.serverKey)
}

func decodeSCRAMKeys(s string) (scramKeys, error) {
	f := strings.Split(s, "$")
	if len(f) != 4 {
		return scramKeys{}, errBadHash
	}
	iter, err := strconv.Atoi(f[0])
	if err != nil || iter <= 0 {
		return scramKeys{}, errBadHash
	}
	b64 := base64.StdEncoding
	var k scramKeys
	k.iterations = iter
	var e1, e2, e3 error
	k.salt, e1 = b64.DecodeString(f[1])
	k.storedKey, e2 = b64.DecodeString(f[2])
	k.serverKey, e3 = b64.DecodeString(f[3])
	if e1 != nil || e2 != nil || e3 != nil || len(k.storedKey) != sha256.Size || len(k.serverKey) != sha256.Size {
		return scramKeys{}, errBadHash
	}
	return k, nil
}

func pbkdf2Key(password string, salt []byte, iterations int) ([]byte, error) {
	return pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
}
