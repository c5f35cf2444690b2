package server

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// ListenerConfig configures a Listener.
type ListenerConfig struct {
	// PerAddr limits simultaneous connections per client address. Share
	// one among all of a server's listeners so the limit holds per
	// address, not per listener. Nil: no limit.
	PerAddr *AddrLimiter
	// Proxy makes every connection start with a PROXY protocol header
	// (v1 or v2) whose client address replaces the peer's.
	Proxy bool
	// HeaderTimeout bounds the wait for the PROXY header; 0 means 10s.
	HeaderTimeout time.Duration
	// Refuse, if set, writes a protocol-specific goodbye to a connection
	// refused for its address having too many ("* BYE ...",
	// "-ERR [SYS/TEMP] ...", "421 ..."), before it is closed.
	Refuse func(net.Conn)
	Logger *slog.Logger
	// Name labels this listener's metrics ("imap", "pop3s", ...).
	Name string
	// Metrics, if set, counts connections.
	Metrics *Metrics
	// Reclaim, if set, returns memory to the system after a burst of
	// connections has closed. Share one among all of a server's
	// listeners, as PerAddr.
	Reclaim *Reclaimer
}

// Listener wraps a net.Listener with per-address connection limits and
// the PROXY protocol. Connections are vetted in their own goroutines, so a
// client that sends nothing cannot stall Accept for others.
type Listener struct {
	inner net.Listener
	cfg   ListenerConfig
	log   *slog.Logger

	ready  chan net.Conn
	closed chan struct{}
	once   sync.Once
	err    error // accept error that ended the loop; written once, before closed is closed
}

// AddrLimiter counts open connections per client address, across every
// listener that shares it.
type AddrLimiter struct {
	max int

	mu   sync.Mutex
	open map[netip.Addr]int // guarded by mu
}

// NewAddrLimiter allows max connections per address; 0 means no limit.
func NewAddrLimiter(max int) *AddrLimiter {
	return &AddrLimiter{max: max, open: map[netip.Addr]int{}}
}

// admit counts a new connection from ip, or reports false at the limit.
func (a *AddrLimiter) admit(ip netip.Addr) bool {
	if a == nil || a.max <= 0 {
		return true
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open[ip] >= a.max {
		return false
	}
	a.open[ip]++
	return true
}

func (a *AddrLimiter) release(ip netip.Addr) {
	if a == nil || a.max <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.open[ip]--; a.open[ip] <= 0 {
		delete(a.open, ip)
	}
}

// NewListener starts vetting connections from l.
func NewListener(l net.Listener, cfg ListenerConfig) *Listener {
	if cfg.HeaderTimeout == 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln := &Listener{inner: l, cfg: cfg, log: log, ready: make(chan net.Conn), closed: make(chan struct{})}
	go ln.acceptLoop()
	return ln
}

func (l *Listener) acceptLoop() {
	for {
		c, err := Accept(l.inner, l.log)
		if err != nil {
			l.closeWith(err)
			return
		}
		go l.vet(c)
	}
}

// temporaryAcceptError reports whether an accept error may go away by
// itself, so an accept loop waits and tries again rather than giving up:
// the process or system out of file descriptors (EMFILE, ENFILE, ENOBUFS,
// ENOMEM), a connection reset before it was accepted (ECONNABORTED), or a
// timeout.
func temporaryAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// vet reads the PROXY header if configured, applies the per-address limit,
// and hands the connection to Accept.
func (l *Listener) vet(c net.Conn) {
	if l.cfg.Proxy {
		c.SetReadDeadline(time.Now().Add(l.cfg.HeaderTimeout))
		// A v1 header is at most 107 bytes; a v2 address block is read
		// through the buffer in one go, whatever its size.
		br := bufio.NewReaderSize(c, 256)
		client, ok, err := readProxyHeader(br)
		if err != nil {
			l.log.Info("connection refused", "peer", c.RemoteAddr(), "err", err)
			l.cfg.Metrics.connection(l.cfg.Name, "refused")
			c.Close()
			return
		}
		c.SetReadDeadline(time.Time{})
		remote := c.RemoteAddr()
		if ok {
			remote = net.TCPAddrFromAddrPort(client)
		}
		pending, _ := br.Peek(br.Buffered())
		c = &proxiedConn{Conn: c, pending: bytes.Clone(pending), remote: remote}
	}
	ip := AddrOf(c.RemoteAddr())
	if !l.cfg.PerAddr.admit(ip) {
		l.log.Info("connection refused: too many from address", "remote", ip, "limit", l.cfg.PerAddr.max)
		if l.cfg.Refuse != nil {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			l.cfg.Refuse(c)
		}
		l.cfg.Metrics.connection(l.cfg.Name, "refused")
		c.Close()
		return
	}
	l.cfg.Metrics.connection(l.cfg.Name, "accepted")
	l.cfg.Reclaim.opened()
	tc := &trackedConn{Conn: c, release: func() {
		l.cfg.PerAddr.release(ip)
		l.cfg.Metrics.closed(l.cfg.Name)
		l.cfg.Reclaim.closed()
	}}
	select {
	case l.ready <- tc:
	case <-l.closed:
		tc.Close()
	}
}

// Accept returns the next vetted connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.closed:
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections already accepted stay open.
func (l *Listener) Close() error { return l.closeWith(nil) }

// closeWith closes the listener, recording why when the accept loop failed.
func (l *Listener) closeWith(acceptErr error) error {
	var err error
	l.once.Do(func() {
		l.err = acceptErr
		err = l.inner.Close()
		close(l.closed)
	})
	return err
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// trackedConn gives its address slot back when closed.
type trackedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *trackedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// NetConn returns the underlying connection.
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

// AddrOf returns the IP address of a network address, or the zero Addr
// for non-IP addresses (unix sockets), unmapped so IPv4 clients on dual-stack
// sockets look like IPv4.
func AddrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
