package autoconfig

import (
	"context"
	"errors"
	"fmt"
	"time"
)

const (
	// domainsTimeout bounds one read of the served domains. The read is
	// the server's, not a client's: a client that goes away does not
	// cut it short, so it cannot make the next request read again.
	domainsTimeout = 10 * time.Second
	// domainsRetry is how long after a failed read the next one is tried
	// (or DomainsTTL, if shorter); meanwhile the last good list answers.
	domainsRetry = 5 * time.Second
)

// errNoDomains is what requests get while the served domains have never
// been read: a 503.
var errNoDomains = errors.New("the served domains could not be read")

// domainList returns the served domains: the last list read, read again
// from cfg.Domains once it is older than cfg.DomainsTTL. One request
// reads while the others go on with the list they had; only before the
// first list is there do they wait for it. A failed read leaves the last
// good list in use and is tried again after domainsRetry.
func (s *Server) domainList(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	for s.reading != nil && !s.domainsOK {
		// The first list is on its way: wait for it.
		reading := s.reading
		s.mu.Unlock()
		select {
		case <-reading:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s.mu.Lock()
	}
	if s.reading != nil || s.cfg.Now().Before(s.domainsNext) {
		domains, ok := s.domains, s.domainsOK
		s.mu.Unlock()
		if !ok {
			return nil, errNoDomains // the last read failed a moment ago
		}
		return domains, nil
	}
	done := make(chan struct{})
	s.reading = done
	s.mu.Unlock()

	domains, err := s.readDomains(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.reading = nil
	close(done)
	now := s.cfg.Now()
	if err != nil {
		s.domainsNext = now.Add(min(domainsRetry, s.cfg.DomainsTTL))
		// One line per failure episode, not one per request.
		if !s.domainsFailing {
			s.domainsFailing = true
			s.log.Warn("autoconfig: cannot list the served domains; answering from the last list, if any, and trying again", "retry", min(domainsRetry, s.cfg.DomainsTTL), "err", err)
		}
		if !s.domainsOK {
			return nil, fmt.Errorf("%w: %w", errNoDomains, err)
		}
		return s.domains, nil
	}
	if s.domainsFailing {
		s.domainsFailing = false
		s.log.Info("autoconfig: the served domains are read again")
	}
	s.domains, s.domainsOK, s.domainsNext = domains, true, now.Add(s.cfg.DomainsTTL)
	return domains, nil
}

// readDomains calls cfg.Domains with a context of the server's, bounded
// to domainsTimeout. A panic in it is returned as an error, so that the
// read is over for the other requests too and tried again.
func (s *Server) readDomains(ctx context.Context) (domains []string, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), domainsTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("list served domains: panic: %v", p)
		}
	}()
	return s.cfg.Domains(ctx)
}
