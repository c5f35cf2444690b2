package smtpserver

import (
	"bufio"
	"encoding/base64"
	"net"
	"strings"
	"sync"
	"testing"
)

// fakeRelay is the relay MTA of the submission tests: an SMTP server on
// loopback that records the transactions it takes and can refuse a
// recipient, fail a command, or hang on one.
type fakeRelay struct {
	addr string
	// rules, set before the test connects, say how it answers.
	rules relayRules

	mu sync.Mutex // guards what follows
	// txs are the transactions it took, the message's end answered 250.
	txs []relayTx
	// conns counts the connections it accepted.
	conns int
	// hung is closed once it holds a command unanswered (rules.hangAt).
	hung chan struct{}
	// dropped says rules.dropAtData has dropped its connection.
	dropped bool
}

// relayRules say how a fakeRelay answers.
type relayRules struct {
	// refuse maps a recipient to the reply RCPT gets for it.
	refuse map[string]string
	// failAt names a verb ("MAIL", "RCPT", "DATA", "." for the end of the
	// data) the relay answers with failReply, or with a closed connection
	// when failReply is "".
	failAt, failReply string
	// hangAt names a verb the relay never answers.
	hangAt string
	// dropAtData closes the first connection that says DATA, as a relay
	// that timed out an idle client does; later ones are answered.
	dropAtData bool
	// noSMTPUTF8 leaves SMTPUTF8 out of EHLO, no8BITMIME 8BITMIME.
	noSMTPUTF8, no8BITMIME bool
	// user and password, when set, are the AUTH PLAIN login it asks for.
	user, password string
}

// relayTx is a transaction the relay took.
type relayTx struct {
	from   string // MAIL's line after "MAIL FROM:"
	rcpts  []string
	data   string // unstuffed, CRLF lines, without the dot line
	authed string // the user logged in, "" without AUTH
}

func startRelay(t *testing.T, rules relayRules) *fakeRelay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRelay{addr: l.Addr().String(), rules: rules, hung: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, nc)
			mu.Unlock()
			r.mu.Lock()
			r.conns++
			r.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				r.session(nc)
			}()
		}
	}()
	return r
}

// transactions returns the transactions the relay took so far.
func (r *fakeRelay) transactions() []relayTx {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]relayTx(nil), r.txs...)
}

// session answers one connection until QUIT or a failure.
func (r *fakeRelay) session(nc net.Conn) {
	br := bufio.NewReader(nc)
	say := func(s string) bool {
		_, err := nc.Write([]byte(s + "\r\n"))
		return err == nil
	}
	// gate answers verb as the rules say; false ends the session.
	gate := func(verb string) (ok bool, reply string) {
		switch verb {
		case r.rules.hangAt:
			close(r.hung)
			br.ReadString(0) // until the client gives up and closes
			return false, ""
		case r.rules.failAt:
			if r.rules.failReply == "" {
				return false, ""
			}
			return true, r.rules.failReply
		}
		return true, ""
	}
	if !say("220 relay.example.net ESMTP fake") {
		return
	}
	var tx *relayTx
	authed := ""
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		verb = strings.ToUpper(verb)
		switch verb {
		case "EHLO":
			ext := []string{"250-relay.example.net", "250-PIPELINING", "250-SIZE 100000000"}
			if !r.rules.no8BITMIME {
				ext = append(ext, "250-8BITMIME")
			}
			if !r.rules.noSMTPUTF8 {
				ext = append(ext, "250-SMTPUTF8")
			}
			if r.rules.user != "" {
				ext = append(ext, "250-AUTH PLAIN LOGIN")
			}
			say(strings.Join(append(ext, "250 ENHANCEDSTATUSCODES"), "\r\n"))
		case "AUTH":
			resp, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(arg, "PLAIN "))
			if string(resp) != "\x00"+r.rules.user+"\x00"+r.rules.password {
				say("535 5.7.8 bad credentials")
				continue
			}
			authed = r.rules.user
			say("235 2.7.0 OK")
		case "MAIL":
			ok, reply := gate("MAIL")
			if !ok {
				return
			}
			if reply != "" {
				say(reply)
				continue
			}
			if r.rules.user != "" && authed == "" {
				say("530 5.7.0 authentication required")
				continue
			}
			tx = &relayTx{from: strings.TrimPrefix(arg, "FROM:"), authed: authed}
			say("250 2.1.0 OK")
		case "RCPT":
			ok, reply := gate("RCPT")
			if !ok {
				return
			}
			to := strings.TrimSuffix(strings.TrimPrefix(arg, "TO:<"), ">")
			if reply == "" {
				reply = r.rules.refuse[to]
			}
			if reply != "" {
				say(reply)
				continue
			}
			tx.rcpts = append(tx.rcpts, to)
			say("250 2.1.5 OK")
		case "DATA":
			r.mu.Lock()
			drop := r.rules.dropAtData && !r.dropped
			r.dropped = r.dropped || drop
			r.mu.Unlock()
			if drop {
				say("421 4.4.2 relay.example.net Error: timeout exceeded")
				return
			}
			ok, reply := gate("DATA")
			if !ok {
				return
			}
			if reply != "" {
				say(reply)
				continue
			}
			say("354 go ahead")
			var data strings.Builder
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, "."))
			}
			ok, reply = gate(".")
			if !ok {
				return
			}
			if reply != "" {
				say(reply)
				continue
			}
			tx.data = data.String()
			r.mu.Lock()
			r.txs = append(r.txs, *tx)
			r.mu.Unlock()
			tx = nil
			say("250 2.0.0 Ok: queued as FAKE1")
		case "RSET":
			tx = nil
			say("250 2.0.0 OK")
		case "QUIT":
			say("221 2.0.0 bye")
			return
		default:
			say("502 5.5.2 what")
		}
	}
}
