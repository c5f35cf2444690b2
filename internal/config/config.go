// Package config holds buzon's configuration: the structs every part of the
// server reads its settings from, their defaults, loading from TOML, and the
// commented sample that `buzon config example` prints. The sample is
// generated from the doc comments in this file, so it cannot drift from the
// code: document every field here, where it is declared.
//
// The package imports no other buzon package.
package config

import "time"

// Config is the whole configuration of a buzon server.
type Config struct {
	// Host name the server announces in greetings and puts in the
	// self-signed certificate. Default: the machine's host name.
	Hostname string `toml:"hostname"`
	// Folder holding the embedded store, the TLS certificate and the LMTP
	// socket. Relative paths are relative to the working directory.
	Data string `toml:"data"`
	// On SIGTERM, SIGINT or SIGHUP (a closed terminal), how long sessions
	// get to finish the command or transaction in flight before their
	// connections are closed. A POP3 session that has logged in may go on
	// until its QUIT (which applies its deletions) until a second before
	// this runs out.
	ShutdownGrace Duration `toml:"shutdown_grace"`

	Listen     Listen     `toml:"listen"`
	TLS        TLS        `toml:"tls"`
	Store      Store      `toml:"store"`
	Auth       Auth       `toml:"auth"`
	Limits     Limits     `toml:"limits"`
	IMAP       IMAP       `toml:"imap"`
	POP3       POP3       `toml:"pop3"`
	Delivery   Delivery   `toml:"delivery"`
	SMTP       SMTP       `toml:"smtp"`
	Submission Submission `toml:"submission"`
	Sieve      Sieve      `toml:"sieve"`
	Autoconfig Autoconfig `toml:"autoconfig"`
	Log        Log        `toml:"log"`
}

// Listen says where each protocol listens: "host:port", or "off".
type Listen struct {
	// IMAP with STARTTLS (RFC 9051).
	IMAP string `toml:"imap"`
	// IMAP over implicit TLS.
	IMAPS string `toml:"imaps"`
	// POP3 with STLS (RFC 1939, RFC 2595).
	POP3 string `toml:"pop3"`
	// POP3 over implicit TLS.
	POP3S string `toml:"pop3s"`
	// LMTP (RFC 2033) for the MTA to deliver into.
	LMTP string `toml:"lmtp"`
	// LMTP on a unix socket; a relative path is inside the data folder.
	LMTPSocket string `toml:"lmtp_socket"`
	// SMTP (RFC 5321) for other mail servers to deliver to this one's
	// accounts, when it is their MX: internet mail needs port 25 on a
	// public address ("0.0.0.0:25"), which takes root or
	// CAP_NET_BIND_SERVICE. STARTTLS is offered with the certificate in
	// tls. Nothing is relayed; see [smtp].
	SMTP string `toml:"smtp"`
	// Submission (RFC 6409) with STARTTLS: where the accounts' mail
	// clients send mail, with the login they read it with; usually port
	// 587 ("0.0.0.0:587"). buzon hands each message to the MTA in
	// submission.relay, which must be set, while the client waits; see
	// [submission]. Off unless set.
	Submission string `toml:"submission"`
	// Submission over implicit TLS (RFC 8314), usually port 465, which
	// RFC 8314 has clients prefer; otherwise as submission.
	Submissions string `toml:"submissions"`
	// ManageSieve (RFC 5804) with STARTTLS, for mail clients to upload
	// the Sieve scripts that filter mail at delivery; see [sieve].
	Sieve string `toml:"sieve"`
	// Mail client autoconfiguration over plain HTTP (see [autoconfig]):
	// Thunderbird's /mail/config-v1.1.xml and
	// /.well-known/autoconfig/mail/config-v1.1.xml, Outlook's
	// /autodiscover/autodiscover.xml (Apple's profile only with
	// autoconfig.apple_profile_over_http). Clients ask autoconfig.<domain>
	// and autodiscover.<domain> on port 80 ("0.0.0.0:80", or a proxy in
	// front).
	Autoconfig string `toml:"autoconfig"`
	// The same over HTTPS, with the certificate in tls (renewals taken as
	// for IMAPS), and Apple's /apple/mail.mobileconfig. Outlook asks only
	// over HTTPS, on port 443, and Thunderbird tries HTTPS first; the
	// certificate must then name autoconfig.<domain> and
	// autodiscover.<domain>.
	Autoconfigs string `toml:"autoconfigs"`
	// Prometheus metrics over HTTP at /metrics.
	Metrics string `toml:"metrics"`
	// Also serve Go's runtime profiles (CPU, heap, allocations, blocking,
	// mutex contention; net/http/pprof) at /debug/pprof/ on the metrics
	// listener, and sample blocking and mutex events for them. Profiles
	// reveal internals: turn this on only where the metrics listener is
	// reachable by trusted hosts alone.
	Pprof bool `toml:"pprof"`
	// Accept the PROXY protocol (v1 and v2) from a load balancer on every
	// TCP listener, so logs and login throttling see client addresses.
	// Connections without a PROXY header are refused when this is on.
	ProxyProtocol bool `toml:"proxy_protocol"`
}

// TLS configures certificates for implicit TLS and STARTTLS/STLS.
type TLS struct {
	// Certificate chain (PEM): the server's certificate, then the
	// intermediates (certbot's fullchain.pem). Renewed files are taken
	// while the server runs, without a restart: they are looked at every
	// 5 seconds, symbolic links followed (certbot's live/ folder), and a
	// new pair is served once certificate and key match. Empty: a
	// self-signed certificate is generated in the data folder, naming
	// localhost, 127.0.0.1 and the host name, valid for 820 days and made
	// anew at a start within 30 days of its end.
	Cert string `toml:"cert"`
	// Private key (PEM) for cert, readable by buzon's user.
	Key string `toml:"key"`
	// Time allowed for a client to complete the TLS handshake.
	HandshakeTimeout Duration `toml:"handshake_timeout"`
}

// Store chooses and configures the mail store.
type Store struct {
	// "sqlite" (embedded, in the data folder) or "postgres".
	Backend string `toml:"backend"`
	// PostgreSQL connection string, for backend "postgres" (PostgreSQL 12
	// or later; the connections run generic plans unless it sets
	// plan_cache_mode).
	DSN string `toml:"dsn"`
	// Most account databases the sqlite backend keeps open at once.
	MaxOpenAccounts int `toml:"max_open_accounts"`
	// UIDs, over all mailboxes, each process keeps in memory so that
	// SELECT of a mailbox selected before reads only what changed since
	// (4 bytes each, least recently used dropped first; 0 keeps none).
	CachedUIDs int `toml:"cached_uids"`
	// Expunged messages each mailbox remembers for QRESYNC clients
	// (RFC 7162): with more than twice as many, the oldest are
	// forgotten down to this many, and a client resynchronizing from
	// before them is told of every UID it may know that is gone instead.
	KeptExpunges int `toml:"kept_expunges"`
}

// Auth configures password storage and login throttling.
type Auth struct {
	// Hash for new passwords: "argon2id" or "bcrypt". Existing hashes
	// of either kind keep working.
	Scheme string `toml:"scheme"`
	// Argon2id passes over memory.
	Argon2Time uint32 `toml:"argon2_time"`
	// Argon2id memory in KiB.
	Argon2Memory uint32 `toml:"argon2_memory"`
	// Argon2id parallelism.
	Argon2Threads uint8 `toml:"argon2_threads"`
	// Bcrypt cost (4 to 31).
	BcryptCost int `toml:"bcrypt_cost"`
	// PBKDF2 iterations for the SCRAM-SHA-256 verifiers (RFC 7677 asks
	// for at least 4096).
	SCRAMIterations int `toml:"scram_iterations"`
	// Password hashes verified at once; further logins wait their turn.
	// Each argon2id check holds argon2_memory KiB while it runs, so this
	// bounds what a burst of logins (phones reconnecting together, or a
	// guesser on many connections) can take. 0: one per CPU, as the
	// checks are bound by CPU and more at once would not finish sooner.
	ConcurrentChecks int `toml:"concurrent_checks"`
	// Allow plaintext logins (LOGIN, USER/PASS, AUTH PLAIN) on connections
	// without TLS from addresses other than loopback.
	AllowPlaintext bool `toml:"allow_plaintext"`
	// Delay before answering the first failed login from an address or
	// for an account; it doubles with each further failure.
	FailureDelay Duration `toml:"failure_delay"`
	// Longest delay before answering a failed login.
	MaxFailureDelay Duration `toml:"max_failure_delay"`
	// Failed logins from one address, or for one account, after which
	// logins are refused for lockout_duration. 0 disables lockout. An
	// account's lockout spares the addresses it logged in from in the
	// last 30 days (IPv6: the /64), so that a guesser elsewhere cannot
	// lock its owner out of their usual devices; failures from those
	// addresses still count, and each address's own lockout applies.
	LockoutAfter int `toml:"lockout_after"`
	// How long a lockout lasts; failures older than this are forgotten.
	LockoutDuration Duration `toml:"lockout_duration"`
}

// Limits bound what one client can make the server do. None may be
// negative; where 0 means "no limit", the setting says so.
type Limits struct {
	// Longest command line in bytes, literals excluded (at least 1024).
	MaxLineLength int `toml:"max_line_length"`
	// Largest message accepted by LMTP, SMTP, APPEND or deliver, in
	// bytes (at least 1024); SMTP announces it as SIZE.
	MaxMessageSize int64 `toml:"max_message_size"`
	// Largest IMAP literal other than an APPEND message, in bytes
	// (at least 1024).
	MaxLiteral int64 `toml:"max_literal"`
	// Most mailboxes per account; 0: no limit below the store's own.
	MaxMailboxes int `toml:"max_mailboxes"`
	// Longest mailbox name in bytes; 0: the store's own limit (1000).
	MaxMailboxNameLength int `toml:"max_mailbox_name_length"`
	// Most simultaneous connections from one IP address, over all
	// listeners together; 0: no limit.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// Most simultaneous IMAP, POP3 and ManageSieve sessions of one
	// account; 0: no limit.
	MaxConnectionsPerAccount int `toml:"max_connections_per_account"`
	// Commands per second one connection may send, sustained; bursts of
	// twice as many are allowed. A client kept over its rate for ten
	// seconds on end by commands that achieve nothing (NOOPs, failures)
	// is disconnected; commands that do work are only slowed down. The
	// default is above what mbsync sends syncing a large folder. 0: no
	// limit.
	CommandsPerSecond float64 `toml:"commands_per_second"`
	// Bytes of responses one IMAP connection buffers before writing
	// them out, up to 64 KiB (POP3 buffers 32 KiB). Responses stream
	// from the store, so a client that stops reading holds no more than
	// this and the socket's buffer; it is disconnected once a write has
	// blocked for imap.idle_timeout, at most 2 minutes, or for
	// pop3.idle_timeout.
	MaxOutputBacklog int `toml:"max_output_backlog"`
}

// IMAP configures the IMAP server.
type IMAP struct {
	// An idle client is logged out after this long (RFC 9051 5.4 asks for
	// at least 30 minutes).
	IdleTimeout Duration `toml:"idle_timeout"`
	// How long a client has, from when it connects, to log in.
	LoginTimeout Duration `toml:"login_timeout"`
	// A client in IDLE hears "* OK Still here" this often, so that NAT
	// gateways and firewalls that forget a quiet connection after a few
	// minutes keep it: RFC 2177 has clients renew IDLE only every 29
	// minutes. 0 gets the default.
	IdleKeepalive Duration `toml:"idle_keepalive"`
	// Expunge messages from the Trash (the \Trash special-use mailbox, RFC
	// 6154) this many days after they were put there: counted from the
	// save date (RFC 8514), so a message received long ago and deleted
	// today stays its full time. Mail in Trash when buzon was upgraded
	// to save dates counts from the upgrade; a message without a save
	// date is never expunged by this. 30, as most hosted mail does
	// (Dovecot ships it off, and a Trash that never empties fills the
	// quota unseen); 0 keeps Trash until the client empties it. It
	// runs when an account logs in over IMAP, at most once an hour per
	// account, and clients see the messages go as expunges.
	ExpungeTrashDays int `toml:"expunge_trash_days"`
	// The same for Junk (the \Junk special-use mailbox): spam nobody
	// claimed after this many days goes. 0 keeps it. Both are at most
	// 1,000,000 (some 2,700 years, "practically never").
	ExpungeJunkDays int `toml:"expunge_junk_days"`
}

// MaxDays bounds the settings counted in days (pop3.expire_days,
// imap.expunge_trash_days, imap.expunge_junk_days): 1,000,000 days, some
// 2,700 years, as the fetch client's keep_days. A larger value would
// mean nothing more, and a cutoff that many days back would leave the
// range of the stores' timestamps.
const MaxDays = 1_000_000

// DaysBefore returns the time days calendar days before now, for a
// setting counted in days; a days past MaxDays (a config that skipped
// Validate) counts as MaxDays. A Duration of as many days would overflow
// past 292 years, into a cutoff in the future that expires everything.
func DaysBefore(now time.Time, days int) time.Time {
	return now.AddDate(0, 0, -min(days, MaxDays))
}

// POP3 configures the POP3 server.
type POP3 struct {
	// An idle client is disconnected after this long (RFC 1939 3 asks
	// for at least 10 minutes).
	IdleTimeout Duration `toml:"idle_timeout"`
	// Delete messages from INBOX this many days after POP3 first
	// retrieved them, and advertise it as EXPIRE (RFC 2449). 0 keeps
	// them until the client deletes them. At most 1,000,000 (some 2,700
	// years, "practically never").
	ExpireDays int `toml:"expire_days"`
	// How often the expiry sweep runs.
	ExpireInterval Duration `toml:"expire_interval"`
	// A login refused because another session of the account holds the
	// maildrop (RFC 1939 8) ends that session, without applying its
	// deletions, when its client has been silent this long: no command,
	// nothing of a response taken by the network. A phone that lost its
	// signal mid-session is otherwise told [IN-USE] until TCP notices,
	// minutes later. 0 never ends a session. With several nodes on
	// PostgreSQL, a login asks the node holding the maildrop, and that
	// node's setting decides.
	StaleSession Duration `toml:"stale_session"`
}

// Delivery configures LMTP and local delivery.
type Delivery struct {
	// Messages up to this size are spooled in memory, larger ones in a
	// temporary file in the data folder.
	MemorySpool int64 `toml:"memory_spool"`
	// Most recipients of one LMTP transaction.
	MaxRecipients int `toml:"max_recipients"`
	// How long LMTP waits for the client, for each command and for each
	// piece of a message's data, and for it to take a reply; past it the
	// session ends with 421 and nothing of its message is stored. RFC
	// 5321 4.5.3.2 asks for minutes: an MTA may pause between commands.
	Timeout Duration `toml:"timeout"`
	// Put a Return-Path header field with the envelope sender at the top
	// of each message delivered over LMTP, as RFC 5321 4.4 asks of final
	// delivery and Dovecot's LMTP does. Off, messages are stored exactly as
	// the MTA sent them. (For buzon deliver, the MTA adds one: Postfix's
	// local(8) does, and pipe(8) with flags=R.)
	ReturnPath bool `toml:"return_path"`
	// Levels, in percent of an account's quota, at which its owner is
	// warned that the mailbox is filling up: a delivery that takes the
	// account's size or number of messages, whichever crosses, to or
	// past a level puts a short notice into its INBOX (from
	// postmaster@<hostname>) saying how full it is, that mail will be
	// refused once it is full, and how to make room. Once per level: a
	// mailbox that stays above it hears no more, one that falls below
	// it and rises again is warned again. The notice counts against the
	// quota and is left out when it does not fit. Accounts without a
	// quota get none, and neither does mail a client stores over IMAP.
	// Each 1 to 99; [] sends no notices.
	QuotaWarnings []int `toml:"quota_warnings"`
}

// SMTP configures the SMTP listener (listen.smtp), which receives mail
// for this server's accounts and nothing else: it relays nothing, sends
// nothing (no bounces: a message it cannot take is refused while the
// sender is connected), and checks no SPF, DKIM or DMARC and filters no
// spam. Message size and line length are those in [limits].
type SMTP struct {
	// Most recipients of one transaction; a client with more sends the
	// message again for the rest (RFC 5321 4.5.3.1.8 asks for 100).
	MaxRecipients int `toml:"max_recipients"`
	// How long the server waits for the client, for each command and for
	// each piece of a message's data, and for it to take a reply; past it
	// the session ends with 421 and nothing of its message is stored.
	// RFC 5321 4.5.3.2.7 asks for at least 5 minutes.
	Timeout Duration `toml:"timeout"`
	// A message that arrives with more Received header fields than this
	// is taken for a mail loop and refused for good (554 5.4.6;
	// RFC 5321 6.3).
	MaxReceived int `toml:"max_received"`
	// Commands refused for good (5xx: an unknown recipient, a command out
	// of sequence, a line too long) in one session after which the
	// client is sent away with 421: address harvesters and programs that
	// speak no SMTP stop there. Temporary refusals (4xx, such as
	// recipients beyond max_recipients) do not count.
	MaxErrors int `toml:"max_errors"`
}

// Submission configures listen.submission and listen.submissions, where
// the accounts send mail, as Dovecot's submission service does: a client
// logs in (AUTH, over TLS unless from loopback) with its account's
// password, may send only as the account's own address, its aliases and
// their +details, and each message goes on, synchronously, to the relay
// MTA (your Postfix, or a provider's smarthost), which delivers it to the
// world. The client's answers are the relay's: a message is acknowledged
// only once the relay has taken it, and a relay that fails or is silent
// past relay_timeout gets the client a 451, so that it tries again.
// buzon keeps no queue, looks up no MX and sends no bounces. Message
// size is limits.max_message_size; refusals that end a session,
// smtp.max_errors; failed logins are throttled as IMAP's are ([auth]).
type Submission struct {
	// The relay MTA, "host:port": Postfix on loopback, say
	// "127.0.0.1:10025", taking mail from this host without a login
	// (mynetworks), or a smarthost with relay_user. Required when a
	// submission listener is on. Sieve vacation replies (sieve.vacation)
	// go through it too, from the null sender <> (RFC 3834 3.3), which
	// it must accept from this host, and redirected mail
	// (sieve.redirect).
	Relay string `toml:"relay"`
	// How the connection to the relay is secured: "starttls" (RFC 3207),
	// "tls" (implicit, RFC 8314, usually port 465), or "none", which is
	// taken only for a relay on loopback (or with relay_allow_plaintext).
	// The relay's certificate is verified, for the host in relay.
	RelayTLS string `toml:"relay_tls"`
	// Allow relay_tls = "none" for a relay that is not on loopback: a
	// private network you trust, where mail and any relay password
	// cross it in the clear.
	RelayAllowPlaintext bool `toml:"relay_allow_plaintext"`
	// PEM file of the certificate authorities the relay's certificate
	// is verified against (a private CA, or a self-signed certificate
	// itself). Empty: the system's.
	RelayCAFile string `toml:"relay_ca_file"`
	// User name buzon logs in to the relay with (AUTH PLAIN, after TLS);
	// empty: no login. With it, relay_password or relay_password_command.
	RelayUser string `toml:"relay_user"`
	// The relay password, as it is; relay_password_command keeps it out
	// of this file.
	RelayPassword string `toml:"relay_password"`
	// A command run with sh -c for each relay connection, whose first
	// line of output is the relay password ("pass show mail/relay").
	RelayPasswordCommand string `toml:"relay_password_command"`
	// Time to connect to the relay and log in to it; past it the client
	// hears 451 at MAIL.
	RelayConnectTimeout Duration `toml:"relay_connect_timeout"`
	// Time the relay has to answer each command, the end of a message
	// included, and to take each write of a message's data; past it the
	// client hears 451 and the relay connection is dropped. Mail clients
	// wait a few minutes at most.
	RelayTimeout Duration `toml:"relay_timeout"`
	// Most recipients of one message; a client with more is told 452 and
	// sends the message again for the rest (RFC 5321 4.5.3.1.10).
	MaxRecipients int `toml:"max_recipients"`
	// How long the server waits for the client, for each command and for
	// each piece of a message's data; past it the session ends with 421.
	Timeout Duration `toml:"timeout"`
	// Messages one account may send in an hour, over all its sessions:
	// an hour's worth at once, then evenly (one every 3 minutes at 20);
	// past it MAIL is put off with 451, which clients retry. It bounds
	// what a stolen password sends. 0: no limit.
	MaxMessagesPerHour int `toml:"max_messages_per_hour"`
	// Let accounts send as any address, in MAIL FROM and in From and
	// Sender: for a server whose users are trusted to use other
	// addresses of theirs (the relay may still check). The null sender
	// stays refused.
	AllowAnySender bool `toml:"allow_any_sender"`
}

// Sieve configures the ManageSieve server (listen.sieve), where people
// keep the Sieve scripts (RFC 5228) that file their mail at delivery, and
// the automatic replies of their vacation action (RFC 5230) and the
// messages they redirect (RFC 5228 4.2), which are sent through
// submission.relay: without a relay, or with vacation or redirect off,
// scripts that use them are refused when they are uploaded. Scripts that
// reject or notify are refused always. Line length, connections per
// address and per account are those in [limits].
type Sieve struct {
	// Most scripts one account may keep (RFC 5804 QUOTA/MAXSCRIPTS).
	MaxScripts int `toml:"max_scripts"`
	// Largest script, in bytes (RFC 5804 QUOTA/MAXSIZE), 1 KiB to 1 MiB
	// (the most the Sieve interpreter compiles).
	MaxScriptSize int64 `toml:"max_script_size"`
	// An idle client is disconnected after this long.
	IdleTimeout Duration `toml:"idle_timeout"`
	// How long a client has, from when it connects, to log in.
	LoginTimeout Duration `toml:"login_timeout"`
	// Malformed or unknown commands in one session after which the
	// client is sent away with BYE: programs that speak no ManageSieve
	// stop there.
	MaxErrors int `toml:"max_errors"`
	// Let scripts send out-of-office replies (vacation, RFC 5230, and
	// vacation-seconds, RFC 6131) through submission.relay, when it is
	// set. Each sender gets at most one reply per period, and none goes
	// to lists, automatons or mail not addressed to the account.
	Vacation bool `toml:"vacation"`
	// The shortest period between two replies to one sender that a
	// script may ask for (:days, :seconds); shorter ones are raised to it.
	VacationMinPeriod Duration `toml:"vacation_min_period"`
	// The period of a script that names none (RFC 5230 4.1 suggests 7
	// days).
	VacationDefaultPeriod Duration `toml:"vacation_default_period"`
	// The longest period a script may ask for; longer ones are lowered
	// to it.
	VacationMaxPeriod Duration `toml:"vacation_max_period"`
	// Time to send one reply, the connection to the relay included.
	// Replies go after the message is stored, and one that fails is
	// logged, not retried.
	VacationTimeout Duration `toml:"vacation_timeout"`
	// Let scripts forward mail (redirect, RFC 5228 4.2, and redirect
	// :copy) through submission.relay, when it is set. A message is
	// forwarded before it is stored, while the sender waits; one the
	// relay does not take is kept in INBOX. At most 4 redirects a
	// message, and none of a message the account forwarded before.
	Redirect bool `toml:"redirect"`
	// The envelope sender of a forwarded message: "account", the
	// forwarding account's address, which passes SPF at the next server
	// and gets the bounces; or "sender", the original sender's, as
	// Pigeonhole does by default, which fails SPF there for senders of
	// other domains unless the relay rewrites it (SRS).
	RedirectEnvelopeFrom string `toml:"redirect_envelope_from"`
	// Time to forward one message, the connection to the relay
	// included; past it the message is kept instead.
	RedirectTimeout Duration `toml:"redirect_timeout"`
	// How long a message forwarded to an address is not forwarded to it
	// again (Pigeonhole's sieve_redirect_duplicate_period). One found
	// forwarded (the sender's retry, the message come again by another
	// route or back in a loop) is kept instead, as after a failed
	// forward: a false match keeps a message that should have gone,
	// never loses one, and a retry after a failed store leaves one
	// forward and one kept copy. A message is the same by its bytes
	// below the trace fields on top (Received, Return-Path and the
	// like); one without a plausible Date (none, unreadable, over a day
	// ahead or older than a week and this period) is forwarded every
	// time, as nothing tells a retry from the next alarm of a device
	// without a clock. 0 forwards every delivery.
	RedirectDuplicatePeriod Duration `toml:"redirect_duplicate_period"`
}

// Autoconfig says what listen.autoconfig and listen.autoconfigs tell mail
// clients: where to find the account's incoming mail (IMAP, POP3) and its
// outgoing server, with the whole address as the user name and no
// password. Every valid address of a served domain gets the same answer,
// whether its account exists or not.
type Autoconfig struct {
	// Mail domains whose addresses get answers; others get 404. Empty:
	// the domains of the accounts and aliases in the store, read again at
	// most once a minute (after a failed read, the last list answers).
	Domains []string `toml:"domains"`
	// Host name clients connect to; it must be one the certificate
	// names. Empty: hostname.
	Host string `toml:"host"`
	// Listeners told of, in the order clients should prefer them, each
	// only if it is on: "imaps", "imap" (STARTTLS), "pop3s", "pop3"
	// (STLS). Outlook takes the first IMAP and the first POP3 one, in
	// this order; an Apple profile one IMAP server, implicit TLS if on.
	Advertise []string `toml:"advertise"`
	// Ports clients are told, where they differ from the port the
	// listener is bound to: behind NAT or a load balancer, or with buzon
	// on high ports and the firewall forwarding 993 to 1993. 0: the
	// listener's own port.
	IMAPSPort int `toml:"imaps_port"`
	// See imaps_port.
	IMAPPort int `toml:"imap_port"`
	// See imaps_port.
	POP3SPort int `toml:"pop3s_port"`
	// See imaps_port.
	POP3Port int `toml:"pop3_port"`
	// See imaps_port; for listen.submissions.
	SubmissionsPort int `toml:"submissions_port"`
	// See imaps_port; for listen.submission.
	SubmissionPort int `toml:"submission_port"`
	// Outgoing (submission, RFC 6409) server clients are told of,
	// "host:port", where it is not buzon: the MTA that sends the
	// accounts' mail and takes their logins. Empty: buzon's own
	// listen.submissions (implicit TLS, which RFC 8314 has clients
	// prefer) and listen.submission (STARTTLS), those that are on, at
	// host; if neither is, none is told: Thunderbird, which needs one,
	// then ignores the whole answer and guesses instead, and no Apple
	// profile is offered (Apple's payload needs one too).
	Submission string `toml:"submission"`
	// How clients secure the connection to autoconfig.submission: "tls"
	// (implicit, port 465, RFC 8314) or "starttls" (port 587). Empty:
	// tls for port 465, starttls for any other.
	SubmissionSecurity string `toml:"submission_security"`
	// Serve the Apple profile (/apple/mail.mobileconfig) on
	// listen.autoconfig, plain HTTP, too. Off, it is served over HTTPS
	// only: a profile is unsigned, so one swapped on the way looks the
	// same to the person installing it. Turn it on only where a proxy
	// that terminates TLS passes the requests on to listen.autoconfig.
	AppleProfileOverHTTP bool `toml:"apple_profile_over_http"`
}

// Log configures logging.
type Log struct {
	// "debug", "info", "warn" or "error".
	Level string `toml:"level"`
	// "text" (key=value) or "json".
	Format string `toml:"format"`
}

// Default returns the configuration used where a file says nothing: every
// listener on loopback, the embedded store in ./buzon-data.
func Default() Config {
	return Config{
		Data:          "./buzon-data",
		ShutdownGrace: Duration(30 * time.Second),
		Listen: Listen{
			IMAP:        "127.0.0.1:1143",
			IMAPS:       "127.0.0.1:1993",
			POP3:        "127.0.0.1:1110",
			POP3S:       "127.0.0.1:1995",
			LMTP:        "127.0.0.1:2424",
			LMTPSocket:  "lmtp.sock",
			SMTP:        "127.0.0.1:2525",
			Submission:  "off",
			Submissions: "off",
			Sieve:       "127.0.0.1:4190",
			Autoconfig:  "off",
			Autoconfigs: "off",
			Metrics:     "off",
		},
		TLS: TLS{HandshakeTimeout: Duration(30 * time.Second)},
		Store: Store{
			Backend:         "sqlite",
			MaxOpenAccounts: 256,
			CachedUIDs:      4_000_000,
			KeptExpunges:    100_000,
		},
		Auth: Auth{
			Scheme:          "argon2id",
			Argon2Time:      2,
			Argon2Memory:    19 * 1024,
			Argon2Threads:   1,
			BcryptCost:      10,
			SCRAMIterations: 4096,
			FailureDelay:    Duration(500 * time.Millisecond),
			MaxFailureDelay: Duration(10 * time.Second),
			LockoutAfter:    20,
			LockoutDuration: Duration(10 * time.Minute),
		},
		Limits: Limits{
			MaxLineLength:            64 * 1024,
			MaxMessageSize:           64 << 20,
			MaxLiteral:               1 << 20,
			MaxMailboxes:             2000,
			MaxMailboxNameLength:     512,
			MaxConnectionsPerIP:      200,
			MaxConnectionsPerAccount: 100,
			CommandsPerSecond:        2000,
			MaxOutputBacklog:         4 << 20,
		},
		IMAP: IMAP{
			IdleTimeout:   Duration(30 * time.Minute),
			LoginTimeout:  Duration(2 * time.Minute),
			IdleKeepalive: Duration(2 * time.Minute),

			ExpungeTrashDays: 30,
			ExpungeJunkDays:  30,
		},
		POP3: POP3{
			IdleTimeout:    Duration(10 * time.Minute),
			ExpireInterval: Duration(time.Hour),
			StaleSession:   Duration(time.Minute),
		},
		Delivery: Delivery{
			MemorySpool:   1 << 20,
			MaxRecipients: 100,
			Timeout:       Duration(10 * time.Minute),
			QuotaWarnings: []int{80, 95},
		},
		SMTP: SMTP{
			MaxRecipients: 100,
			Timeout:       Duration(5 * time.Minute),
			MaxReceived:   100,
			MaxErrors:     20,
		},
		Submission: Submission{
			RelayTLS:            "starttls",
			RelayConnectTimeout: Duration(30 * time.Second),
			RelayTimeout:        Duration(5 * time.Minute),
			MaxRecipients:       100,
			MaxMessagesPerHour:  0,
			Timeout:             Duration(5 * time.Minute),
		},
		Sieve: Sieve{
			MaxScripts:    16,
			MaxScriptSize: 64 << 10,
			IdleTimeout:   Duration(30 * time.Minute),
			LoginTimeout:  Duration(2 * time.Minute),
			MaxErrors:     20,
			Vacation:      true,
			// Pigeonhole's minimum and default; its maximum is none.
			VacationMinPeriod:       Duration(24 * time.Hour),
			VacationDefaultPeriod:   Duration(7 * 24 * time.Hour),
			VacationMaxPeriod:       Duration(90 * 24 * time.Hour),
			VacationTimeout:         Duration(30 * time.Second),
			Redirect:                true,
			RedirectEnvelopeFrom:    "account",
			RedirectTimeout:         Duration(30 * time.Second),
			RedirectDuplicatePeriod: Duration(12 * time.Hour),
		},
		Autoconfig: Autoconfig{Domains: []string{}, Advertise: []string{"imaps", "imap", "pop3s", "pop3"}},
		Log:        Log{Level: "info", Format: "text"},
	}
}
