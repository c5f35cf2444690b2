// Package bench is a load generator for mail servers: it speaks IMAP
// (RFC 9051, RFC 3501, IDLE RFC 2177, LITERAL+ RFC 7888), POP3 (RFC 1939)
// and LMTP (RFC 2033) to any server given its host, ports, a user pattern,
// a user count and a password, so one run can drive buzon and Dovecot alike.
//
// The protocol drivers are its own: raw commands over a net.Conn with bufio,
// reading every response in full (literals included) but parsing only what
// a profile needs, so that what is measured is the server and not a client
// library.
//
// Profiles:
//
//   - fill: make every user hold at least Config.MailboxSize messages,
//     delivered over LMTP; the messages depend only on the seed, the user
//     number and the message index, so two servers filled alike hold the
//     same mail.
//   - deliver: LMTP deliveries of realistic 1-100 KB messages.
//   - pop3-download: whole sessions that RETR every message of a mailbox.
//   - imap-sync: a client's first sync and resync: LOGIN, SELECT,
//     FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE),
//     BODY.PEEK[] of the newest messages, LOGOUT.
//   - imap-mixed: a steady mix of SELECT, FETCH, STORE, SEARCH, APPEND,
//     EXPUNGE and IDLE per client, in the spirit of Dovecot's imaptest.
//   - idle-fanout: many IDLE connections, one delivery to the users they
//     watch, the time until every connection saw EXISTS, and the server's
//     resident memory per idle connection.
//
// Run executes a profile and returns a Result; Main is the command line
// (flags, table and JSON output, and "compare", which turns result files of
// several servers into a markdown table of ratios).
//
// With Config.PIDs or Config.PIDCmd the server's processes (and all their
// descendants) are watched through /proc: resident memory from
// /proc/PID/status, proportional memory from /proc/PID/smaps_rollup, CPU
// time from /proc/PID/stat.
package bench
