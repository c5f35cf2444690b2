package bench

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// dialer opens client connections, binding them in turn to its source
// addresses, and ties each to a context: when the context ends, the
// connection's deadline passes, so no client outlives its run.
type dialer struct {
	sources []netip.Addr
	next    atomic.Uint64
	timeout time.Duration
}

// dial connects to addr. The connection's stop function, called at close,
// releases the tie to ctx.
func (d *dialer) dial(ctx context.Context, addr string) (net.Conn, func() bool, error) {
	nd := net.Dialer{Timeout: d.timeout}
	if len(d.sources) > 0 {
		src := d.sources[(d.next.Add(1)-1)%uint64(len(d.sources))]
		nd.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		nd.Control = func(_, _ string, c syscall.RawConn) error { return bindNoPort(c) }
	}
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return conn, stop, nil
}

// ParseSources reads a list of source addresses: "none" or "" for none,
// comma-separated addresses and ranges such as "127.0.0.2-127.0.0.50", or
// "auto": 127.0.0.2-127.0.0.50 when host is an IPv4 loopback address
// (all of 127/8 reaches the loopback interface), none otherwise.
func ParseSources(s, host string) ([]netip.Addr, error) {
	switch s {
	case "", "none":
		return nil, nil
	case "auto":
		if a, err := netip.ParseAddr(host); err == nil && a.Is4() && a.IsLoopback() {
			return ParseSources("127.0.0.2-127.0.0.50", host)
		}
		return nil, nil
	}
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := netip.ParseAddr(lo)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", part, err)
		}
		if !isRange {
			out = append(out, first)
			continue
		}
		last, err := netip.ParseAddr(hi)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", part, err)
		}
		if last.Less(first) || first.BitLen() != last.BitLen() {
			return nil, fmt.Errorf("source range %q is empty", part)
		}
		for a := first; a.Compare(last) <= 0 && a.IsValid(); a = a.Next() {
			out = append(out, a)
			if len(out) > 1<<16 {
				return nil, fmt.Errorf("source range %q: more than %d addresses", part, 1<<16)
			}
		}
	}
	return out, nil
}
