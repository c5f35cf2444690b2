// Package fetch is buzon's fetch client (`buzon fetch`): it takes mail off
// other servers over POP3 (RFC 1939, with CAPA and response codes, RFC
// 2449; STLS, RFC 2595; SASL, RFC 5034) and IMAP (RFC 9051 and RFC 3501;
// UIDPLUS, RFC 4315; MOVE, RFC 6851; IDLE, RFC 2177), logging in with a
// password or an OAuth 2.0 token (OAUTHBEARER, RFC 7628, or XOAUTH2), and
// stores it in a Maildir, an mbox file (RFC 4155), a buzon account or
// through an MDA command.
//
// Each account has a mode: "delete" removes a message from the server once
// it is stored here; "keep" leaves it, and with keep_days removes it that
// many days after it was first downloaded. IMAP accounts may also mark
// messages \Seen or move them to a folder after downloading them.
//
// # Never lose, never duplicate
//
// What was fetched is kept per account in a state folder (see state.go):
// POP3 UIDLs; IMAP UIDVALIDITY and UIDs per folder; the first-download
// time of each. For each message the steps are, each durable before the
// next: record the intent with the message's place at the destination
// (Ref), store the message, record it stored, delete it on the server. A
// crash anywhere leaves the message on the server; a rerun that finds an
// intent asks the destination whether it got there (Destination.Has)
// rather than storing it again. The guarantees per destination are listed
// on Destination.
//
// A POP3 message is known by its UIDL and its LIST size: a server that
// gives a new message the UIDL of one fetched before has it fetched as new
// (see pop3Reused). A POP3 server without UIDL is usable only in delete
// mode; messages are then recognised by a hash of their header and size,
// and so is a message that a server with UIDL gives no id (with keep it
// stays on the server). An IMAP folder whose UIDVALIDITY changed has its
// messages matched to those fetched before by Message-ID, date, subject
// and size (see fingerprint); messages without a Message-ID are fetched
// again rather than guessed at.
package fetch
