package managesieve_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/managesieve"
)

// TestLoginTimeoutNotReading: a client that sends commands before login
// and never reads the answers is dropped at sieve.login_timeout, not held
// until the idle timeout (30 minutes) because the server is stuck writing
// to it.
func TestLoginTimeoutNotReading(t *testing.T) {
	t.Parallel()
	e := start(t, options{config: func(c *managesieve.Config) {
		c.Sieve.LoginTimeout = config.Duration(time.Second)
		c.Sieve.IdleTimeout = config.Duration(time.Hour)
	}})
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)

	// NOOP echoes its tag: each command has the server write 60 KB
	// the client never takes, until the server's writes block.
	noop := "NOOP {60000+}\r\n" + strings.Repeat("x", 60000) + "\r\n"
	wrote := make(chan error, 1)
	go func() {
		for {
			if _, err := conn.Write([]byte(noop)); err != nil {
				wrote <- err
				return
			}
		}
	}()
	// The client's writes fail once the server has closed the
	// connection; the bound is far over the login timeout and far under
	// the idle timeout.
	select {
	case <-wrote:
	case <-time.After(time.Minute):
		t.Fatal("a client that does not read was still connected a minute after the login timeout")
	}
}
