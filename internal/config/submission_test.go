package config

import (
	"strings"
	"testing"
)

// TestValidateSubmission: a submission listener needs a relay; a relay
// in the clear must be on loopback or allowed; a relay login needs one
// password.
func TestValidateSubmission(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(c *Config)
		want string // "" for valid, else a part of the error
	}{
		{"off by default", func(c *Config) {}, ""},
		{"listener without relay", func(c *Config) { c.Listen.Submission = "127.0.0.1:587" }, "listen.submission is on, but submission.relay is not set"},
		{"implicit listener without relay", func(c *Config) { c.Listen.Submissions = "127.0.0.1:465" }, "listen.submissions is on, but submission.relay is not set"},
		{"listener with relay", func(c *Config) {
			c.Listen.Submission, c.Submission.Relay = "127.0.0.1:587", "mail.example.org:587"
		}, ""},
		{"relay not host:port", func(c *Config) { c.Submission.Relay = "mail.example.org" }, "submission.relay: \"mail.example.org\" is not host:port"},
		{"plaintext on loopback", func(c *Config) { c.Submission.Relay, c.Submission.RelayTLS = "127.0.0.1:10025", "none" }, ""},
		{"plaintext on localhost", func(c *Config) { c.Submission.Relay, c.Submission.RelayTLS = "localhost:10025", "none" }, ""},
		{"plaintext elsewhere", func(c *Config) { c.Submission.Relay, c.Submission.RelayTLS = "10.0.0.5:25", "none" }, "in the clear"},
		{"plaintext elsewhere allowed", func(c *Config) {
			c.Submission.Relay, c.Submission.RelayTLS, c.Submission.RelayAllowPlaintext = "10.0.0.5:25", "none", true
		}, ""},
		{"unknown TLS mode", func(c *Config) { c.Submission.Relay, c.Submission.RelayTLS = "10.0.0.5:25", "ssl" }, "is not starttls, tls or none"},
		{"user without password", func(c *Config) { c.Submission.Relay, c.Submission.RelayUser = "smtp.example.net:465", "me" }, "needs relay_password"},
		{"two passwords", func(c *Config) {
			c.Submission.Relay, c.Submission.RelayUser = "smtp.example.net:465", "me"
			c.Submission.RelayPassword, c.Submission.RelayPasswordCommand = "x", "echo x"
		}, "one or the other"},
		{"password without user", func(c *Config) { c.Submission.Relay, c.Submission.RelayPassword = "smtp.example.net:465", "x" }, "needs relay_user"},
		{"no recipients", func(c *Config) { c.Submission.MaxRecipients = 0 }, "submission.max_recipients"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.set(&c)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
}
