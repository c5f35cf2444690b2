package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/buzon-mail/buzon/internal/autoconfig"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
)

// newAutoconfig makes the server behind listen.autoconfig and
// listen.autoconfigs: it tells clients the listeners of
// autoconfig.advertise that are on, on the ports they are bound to
// (bound) unless the configuration names others, at autoconfig.host or
// the host name.
func newAutoconfig(cfg config.Config, bound map[string]string, st store.Store, log *slog.Logger) (*autoconfig.Server, error) {
	ac := cfg.Autoconfig
	host := ac.Host
	if host == "" {
		host = cfg.Hostname
	}
	told := map[string]int{"imaps": ac.IMAPSPort, "imap": ac.IMAPPort, "pop3s": ac.POP3SPort, "pop3": ac.POP3Port}
	var incoming []autoconfig.Endpoint
	for _, name := range ac.Advertise {
		addr, on := bound[name]
		if !on {
			continue
		}
		port := told[name]
		if port == 0 {
			_, p, _ := net.SplitHostPort(addr)
			port, _ = strconv.Atoi(p)
		}
		e := autoconfig.Endpoint{Protocol: strings.TrimSuffix(name, "s"), Host: host, Port: port, Security: autoconfig.STARTTLS}
		if name == "imaps" || name == "pop3s" {
			e.Security = autoconfig.TLS
		}
		incoming = append(incoming, e)
	}
	if len(incoming) == 0 {
		return nil, fmt.Errorf("autoconfig: none of autoconfig.advertise (%s) has its listener on: nothing to tell clients", strings.Join(ac.Advertise, ", "))
	}
	var outgoing *autoconfig.Endpoint
	if ac.Submission != "" {
		h, p, _ := net.SplitHostPort(ac.Submission) // checked by Validate
		port, _ := strconv.Atoi(p)
		outgoing = &autoconfig.Endpoint{Protocol: "smtp", Host: h, Port: port, Security: autoconfig.STARTTLS}
		if ac.SubmissionSecurity == "tls" || ac.SubmissionSecurity == "" && port == 465 {
			outgoing.Security = autoconfig.TLS
		}
	} else {
		log.Warn("autoconfig: no outgoing server to tell clients (autoconfig.submission): Thunderbird ignores an answer without one, and no Apple profile is offered")
	}
	domains := func(ctx context.Context) ([]string, error) { return servedDomains(ctx, st) }
	if len(ac.Domains) > 0 {
		list := make([]string, len(ac.Domains))
		for i, d := range ac.Domains {
			list[i] = strings.ToLower(strings.TrimSuffix(d, "."))
		}
		domains = func(context.Context) ([]string, error) { return list, nil }
	}
	return autoconfig.New(autoconfig.Config{Incoming: incoming, Outgoing: outgoing, Domains: domains, Logger: log})
}

// servedDomains lists the domains of the store's accounts and aliases:
// the mail domains this server holds mail for.
func servedDomains(ctx context.Context, st store.Store) ([]string, error) {
	accts, err := st.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	aliases, err := st.Aliases(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(accts)+len(aliases))
	for _, a := range accts {
		names = append(names, a.Name)
	}
	for _, a := range aliases {
		names = append(names, a.Name)
	}
	var domains []string
	for _, n := range names {
		if at := strings.LastIndexByte(n, '@'); at >= 0 {
			domains = append(domains, n[at+1:])
		}
	}
	slices.Sort(domains)
	return slices.Compact(domains), nil
}
