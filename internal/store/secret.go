package store

import "context"

// SecretSize is the length in bytes of a SecretKeeper's secrets.
const SecretSize = 32

// SecretKeeper is implemented by stores that keep server secrets, so that
// every process and node serving the store, before and after a restart,
// holds the same ones. The auth package keys the SCRAM salts of unknown
// names with one: were it made at each start, or on each node, a client
// could tell an unknown name (whose salt would change) from a real
// account (whose salt does not). Find it by type assertion on a Store;
// without it, a server makes its secrets at each start.
type SecretKeeper interface {
	// Secret returns the secret called name: SecretSize random bytes
	// (crypto/rand), made and kept durably by the first call for that
	// name, and the same for every later call through any Store on the
	// same storage. When several processes or nodes make it at once,
	// one value is kept and all of them return it. Distinct names have
	// independent secrets. A secret is as safe as the store's data: whoever
	// can read the database can read it.
	Secret(ctx context.Context, name string) ([]byte, error)

	// Secrets returns every secret kept, by name (for moving them to
	// another store).
	Secrets(ctx context.Context) (map[string][]byte, error)
}
