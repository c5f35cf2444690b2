package pop3server

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// command is one parsed command line.
type command struct {
	// name is the keyword, upper-cased (keywords are case-insensitive,
	// RFC 1939 3).
	name string
	// args are the space-separated arguments.
	args []string
	// rest is everything after the keyword and the space following it,
	// unsplit: PASS takes it whole, so a password may contain spaces
	// (RFC 1939 7).
	rest string
}

// Errors of parseCommand, each a -ERR text.
var (
	errEmptyCommand = errors.New("empty command")
	errBadBytes     = errors.New("control characters in command")
	errBadKeyword   = errors.New("invalid command keyword")
)

// maxKeyword is the longest keyword accepted; RFC 1939 3 keywords have
// three or four characters and RFC 2449 extensions keep to that, but a
// longer one is reported as unknown rather than malformed.
const maxKeyword = 16

// parseCommand splits a command line, without its CRLF, into a keyword and
// arguments separated by spaces (RFC 1939 3). Runs of spaces are accepted
// as one, as many clients send them. Arguments may hold 8-bit bytes
// (passwords in UTF-8), but no control characters.
func parseCommand(line string) (command, error) {
	if line == "" {
		return command{}, errEmptyCommand
	}
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < ' ' || c == 0x7f {
			return command{}, errBadBytes
		}
	}
	keyword, rest, _ := strings.Cut(line, " ")
	if keyword == "" || len(keyword) > maxKeyword {
		return command{}, errBadKeyword
	}
	for i := 0; i < len(keyword); i++ {
		c := keyword[i] | 0x20
		if (c < 'a' || c > 'z') && (keyword[i] < '0' || keyword[i] > '9') {
			return command{}, errBadKeyword
		}
	}
	return command{
		name: strings.ToUpper(keyword),
		args: strings.Fields(rest),
		rest: rest,
	}, nil
}

// parseNumber reads a message number or line count: decimal digits only,
// no sign. A number past math.MaxInt32 reads as math.MaxInt32: no message
// has that number, and TOP with that many lines sends the whole body, as
// RFC 1939 7 asks for any count larger than the body.
func parseNumber(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = min(n*10+int64(s[i]-'0'), math.MaxInt32)
	}
	return int(n), true
}

// echo quotes a client's argument for an error response, cut short so
// that the response stays within RFC 2449 4's 512 octets.
func echo(arg string) string {
	const max = 40
	if len(arg) > max {
		return strconv.Quote(arg[:max]) + "..."
	}
	return strconv.Quote(arg)
}

// state is a POP3 session state (RFC 1939 3), as a bit so a command can
// name the set of states that allow it.
type state uint8

const (
	stateAuthorization state = 1 << iota
	stateTransaction
	// stateUpdate is entered by QUIT in TRANSACTION and ends the session.
	stateUpdate
)

const stateAny = stateAuthorization | stateTransaction

// commandSpec is a command's handler, the states that allow it, and its
// arguments.
type commandSpec struct {
	run    func(*conn, command)
	states state
	// minArgs and maxArgs bound the argument count; maxArgs -1 leaves it
	// to the handler.
	minArgs, maxArgs int
	// usage is the syntax, told to a client that gets the arguments wrong.
	usage string
}

// commands is every command the server knows, and where it may be used.
// APOP is missing on purpose: it needs the password stored in the clear.
var commands = map[string]commandSpec{
	// RFC 1939 7, RFC 2595 4, RFC 5034 4: before login.
	"USER": {(*conn).cmdUser, stateAuthorization, 1, 1, "USER name"},
	"PASS": {(*conn).cmdPass, stateAuthorization, 1, -1, "PASS password"},
	"AUTH": {(*conn).cmdAuth, stateAuthorization, 0, 2, "AUTH [mechanism [initial-response]]"},
	"STLS": {(*conn).cmdStls, stateAuthorization, 0, 0, "STLS"},
	// RFC 1939 5, 7: the maildrop.
	"STAT": {(*conn).cmdStat, stateTransaction, 0, 0, "STAT"},
	"LIST": {(*conn).cmdList, stateTransaction, 0, 1, "LIST [msg]"},
	"RETR": {(*conn).cmdRetr, stateTransaction, 1, 1, "RETR msg"},
	"DELE": {(*conn).cmdDele, stateTransaction, 1, 1, "DELE msg"},
	"NOOP": {(*conn).cmdNoop, stateTransaction, 0, 0, "NOOP"},
	"RSET": {(*conn).cmdRset, stateTransaction, 0, 0, "RSET"},
	"TOP":  {(*conn).cmdTop, stateTransaction, 2, 2, "TOP msg lines"},
	"UIDL": {(*conn).cmdUidl, stateTransaction, 0, 1, "UIDL [msg]"},
	// RFC 1939 6 (QUIT in TRANSACTION enters UPDATE), RFC 2449 5.
	"QUIT": {(*conn).cmdQuit, stateAny, 0, 0, "QUIT"},
	"CAPA": {(*conn).cmdCapa, stateAny, 0, 0, "CAPA"},
}
