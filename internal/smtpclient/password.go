package smtpclient

import (
	"context"

	"github.com/buzon-mail/buzon/internal/secret"
)

// CommandPassword returns a Config.Password that runs command at each
// connection (secret.Command): a secret kept in a password manager, or a
// token that expires.
func CommandPassword(command string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) { return secret.Command(ctx, command) }
}

// StaticPassword returns a Config.Password that returns password.
func StaticPassword(password string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return password, nil }
}
