package fetch

import "github.com/buzon-mail/buzon/internal/config"

// Config is a fetch configuration file: where the state lives, how the
// daemon polls, and the accounts to fetch, each an [[account]] table.
// Relative paths in the file are relative to the file's folder; a leading
// "~/" is the home folder.
type Config struct {
	// Folder for what has been fetched from each account (which messages,
	// and when each was first downloaded, for keep_days). Default: the
	// config file's name with ".state" appended, next to it. Deleting it
	// makes the next run fetch again everything left on the servers. When
	// an account's host, port or user changes, its state is set aside
	// there as <name>.state.<time>.old and the account starts afresh: what
	// is on the server is all fetched again.
	StateDir string `toml:"state_dir"`
	// How often --daemon fetches each account (an account's own interval
	// overrides it). IMAP accounts whose server offers IDLE (RFC 2177)
	// also fetch as soon as their first folder receives mail.
	Interval config.Duration `toml:"interval"`
	// Wait after a failed run of an account before the next; it doubles
	// with each further failure, up to max_backoff. Other accounts are not
	// affected.
	Backoff config.Duration `toml:"backoff"`
	// Longest wait after repeated failures.
	MaxBackoff config.Duration `toml:"max_backoff"`
	// Log level: "debug", "info", "warn" or "error".
	LogLevel string `toml:"log_level"`
	// Log format: "text" (key=value) or "json".
	LogFormat string `toml:"log_format"`

	// Accounts to fetch, in the order --once runs them.
	Accounts []Account `toml:"account"`
}

// Account is one mailbox on another server to fetch from, and where its
// mail goes. Exactly one destination is set: maildir, mbox, store or mda.
type Account struct {
	// Name of the account in logs and state files: letters, digits, ".",
	// "_" and "-". Required and unique.
	Name string `toml:"name"`
	// "pop3" or "imap".
	Protocol string `toml:"protocol"`
	// Server host name.
	Host string `toml:"host"`
	// Server port. Default: 995 (pop3) or 993 (imap) with tls =
	// "implicit", 110 or 143 otherwise.
	Port int `toml:"port"`
	// "implicit" (TLS from the first byte), "starttls" (plain connection
	// upgraded with STARTTLS or STLS, RFC 2595; "stls" is the same) or
	// "none" (no encryption: the password travels in the clear; only with
	// allow_insecure = true).
	TLS string `toml:"tls"`
	// Allow tls = "none".
	AllowInsecure bool `toml:"allow_insecure"`
	// Trust the server's certificate only if its SHA-256 fingerprint (hex,
	// colons allowed) is this, instead of checking it against certificate
	// authorities: for a server with a self-signed certificate. A failed
	// TLS check prints the fingerprint the server presented.
	TLSFingerprint string `toml:"tls_fingerprint"`
	// Trust certificates signed by the CA certificates in this PEM file
	// instead of the system's. The host name is still checked.
	TLSCAFile string `toml:"tls_ca_file"`
	// Login name.
	User string `toml:"user"`
	// Password. Prefer password_command, which keeps it out of this file.
	Password string `toml:"password"`
	// Command printing the password, run with "sh -c" before each login;
	// the first line of its output is the password
	// (e.g. "pass show mail/isp").
	PasswordCommand string `toml:"password_command"`
	// How to log in: "password" (LOGIN for IMAP; SASL PLAIN, or USER and
	// PASS, for POP3), or with an OAuth 2.0 access token, as Gmail and
	// Microsoft's servers want: "oauthbearer" (RFC 7628) or "xoauth2" (the
	// mechanism they offered first). A token expires within hours, so it
	// comes from password_command, run before each login: a helper that
	// prints a fresh one (such as oama, or mutt's mutt_oauth2.py).
	Auth string `toml:"auth"`
	// IMAP folders to fetch, named in full and in UTF-8 as mail clients
	// show them ("[Gmail]/All Mail", "INBOX.Archive", "Entwürfe"). The
	// first one is watched with IDLE by --daemon.
	Folders []string `toml:"folders"`
	// "delete": delete each message from the server once it is stored
	// here. "keep": leave messages on the server (see keep_days); each is
	// fetched once. On an IMAP server without UIDPLUS (RFC 4315), whose
	// EXPUNGE removes every message flagged \Deleted, the messages to
	// delete are expunged once the folder was fetched, and only if every
	// message flagged \Deleted there is stored here; otherwise they stay
	// flagged until a later run.
	Mode string `toml:"mode"`
	// With mode = "keep": delete a message from the server this many days
	// after it was first downloaded, the way mail clients count. 0 keeps
	// messages forever.
	KeepDays int `toml:"keep_days"`
	// IMAP: set \Seen on the server on each message downloaded.
	MarkSeen bool `toml:"mark_seen"`
	// IMAP: move each message downloaded to this folder on the server
	// (MOVE, RFC 6851, or where MOVE is missing COPY, then \Deleted and
	// EXPUNGE once the copy is made, expunged as for mode = "delete").
	// Only with mode = "keep" and keep_days = 0.
	MoveTo string `toml:"move_to"`
	// How often --daemon fetches this account. Default: the top-level
	// interval.
	Interval config.Duration `toml:"interval"`
	// Longest wait for the server when connecting and for each response
	// (a response carrying a message may take longer while data keeps
	// arriving).
	Timeout config.Duration `toml:"timeout"`

	// Destination: a Maildir folder (created if missing). Messages are
	// written to tmp/, synced and linked into new/, with line endings
	// converted to LF.
	Maildir string `toml:"maildir"`
	// Destination: an mbox file (mboxrd, RFC 4155), locked while a message
	// is appended with a .lock file and the kernel's locks (fcntl and
	// flock on Linux, fcntl alone on NFS), as procmail, mutt and Dovecot
	// lock it.
	Mbox string `toml:"mbox"`
	// Destination: a buzon account in a local store, delivered like LMTP
	// delivers (the account's quota applies; over quota, the message stays
	// on the server).
	Store *StoreTarget `toml:"store"`
	// Destination: a command run with "sh -c" for each message, the
	// message on its standard input with LF line endings. Exit 0 means
	// stored, if it read the whole message; 75 (EX_TEMPFAIL) means try
	// again later, and so do 126 and 127 (the shell could not run it);
	// anything else is an error for that message, which stays on the
	// server. It gets BUZON_FETCH_ACCOUNT and
	// BUZON_FETCH_ID (the message's identity at the source) in its
	// environment, so that it can recognise a repeated delivery.
	MDA string `toml:"mda"`
}

// StoreTarget names a buzon account to deliver into.
type StoreTarget struct {
	// buzon data folder (the embedded store).
	Data string `toml:"data"`
	// buzon server configuration file, for its store backend, message
	// size limit and spool settings. Optional; data overrides its data.
	Config string `toml:"config"`
	// The buzon account (a login address; a +detail suffix reaches the
	// account without it).
	Account string `toml:"account"`
	// Mailbox of the account. Default: INBOX.
	Mailbox string `toml:"mailbox"`
}
