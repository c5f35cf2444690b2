package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/buzon-mail/buzon/internal/autoconfig"
	"github.com/buzon-mail/buzon/internal/config"
	"github.com/buzon-mail/buzon/internal/store"
)

// newAutoconfig makes the server behind listen.autoconfig and
// listen.autoconfigs, telling clients of the listeners as bound (bound:
// listener name -> address).
func newAutoconfig(cfg config.Config, bound map[string]string, st store.Store, log *slog.Logger) (*autoconfig.Server, error) {
	incoming, outgoing, err := advertised(cfg, bound)
	if err != nil {
		return nil, err
	}
	if publicAddr(cfg.Listen.Autoconfig) || publicAddr(cfg.Listen.Autoconfigs) {
		told := toldPorts(cfg.Autoconfig)
		for _, name := range toldListeners(cfg.Autoconfig) {
			if addr, on := bound[name]; on && !publicAddr(addr) && told[name] == 0 {
				log.Warn("autoconfig: clients are told of a listener they cannot reach, bound to loopback: give it a public address, or set the port a proxy forwards to it (autoconfig."+name+"_port), or leave it out of autoconfig.advertise",
					"listener", name, "addr", addr)
			}
		}
	}
	if len(outgoing) == 0 {
		log.Warn("autoconfig: no outgoing server to tell clients: Thunderbird ignores an answer without one, and no Apple profile is offered; turn on listen.submissions or listen.submission, or name your MTA's in autoconfig.submission")
	}
	domains := func(ctx context.Context) ([]string, error) { return servedDomains(ctx, st) }
	if len(cfg.Autoconfig.Domains) > 0 {
		list := configuredDomains(cfg)
		domains = func(context.Context) ([]string, error) { return list, nil }
	}
	return autoconfig.New(autoconfig.Config{Incoming: incoming, Outgoing: outgoing, Domains: domains,
		AppleOverHTTP: cfg.Autoconfig.AppleProfileOverHTTP, Logger: log})
}

// advertised returns the servers clients are told of: the listeners of
// autoconfig.advertise that are on (in bound), in its order; and the
// outgoing servers, the preferred first: autoconfig.submission if set,
// else buzon's own submissions and submission listeners that are on.
// Each of buzon's is told on the port it is bound to unless the
// configuration names another, at autoconfig.host or the host name.
func advertised(cfg config.Config, bound map[string]string) (incoming, outgoing []autoconfig.Endpoint, err error) {
	ac := cfg.Autoconfig
	host := ac.Host
	if host == "" {
		host = cfg.Hostname
	}
	told := toldPorts(ac)
	// listener is the endpoint for a listener of buzon's, and whether it
	// is on.
	listener := func(name string) (autoconfig.Endpoint, bool) {
		addr, on := bound[name]
		if !on {
			return autoconfig.Endpoint{}, false
		}
		port := told[name]
		if port == 0 {
			_, p, _ := net.SplitHostPort(addr)
			port, _ = strconv.Atoi(p)
		}
		protocol := map[string]string{"imaps": "imap", "imap": "imap", "pop3s": "pop3", "pop3": "pop3",
			"submissions": "smtp", "submission": "smtp"}[name]
		e := autoconfig.Endpoint{Protocol: protocol, Host: host, Port: port, Security: autoconfig.STARTTLS}
		if name == "imaps" || name == "pop3s" || name == "submissions" {
			e.Security = autoconfig.TLS
		}
		return e, true
	}
	for _, name := range ac.Advertise {
		if e, on := listener(name); on {
			incoming = append(incoming, e)
		}
	}
	if len(incoming) == 0 {
		return nil, nil, fmt.Errorf("autoconfig: none of autoconfig.advertise (%s) has its listener on: nothing to tell clients", strings.Join(ac.Advertise, ", "))
	}
	if ac.Submission != "" {
		h, p, _ := net.SplitHostPort(ac.Submission) // checked by Validate
		port, _ := strconv.Atoi(p)
		e := autoconfig.Endpoint{Protocol: "smtp", Host: h, Port: port, Security: autoconfig.STARTTLS}
		if ac.SubmissionSecurity == "tls" || ac.SubmissionSecurity == "" && port == 465 {
			e.Security = autoconfig.TLS
		}
		return incoming, []autoconfig.Endpoint{e}, nil
	}
	// RFC 8314 3.3: implicit TLS preferred.
	for _, name := range []string{"submissions", "submission"} {
		if e, on := listener(name); on {
			outgoing = append(outgoing, e)
		}
	}
	return incoming, outgoing, nil
}

// toldListeners are the listeners of buzon's that clients may be told
// of, those of autoconfig.advertise and, without autoconfig.submission,
// the submission ones.
func toldListeners(ac config.Autoconfig) []string {
	names := slices.Clone(ac.Advertise)
	if ac.Submission == "" {
		names = append(names, "submissions", "submission")
	}
	return names
}

// toldPorts are the ports [autoconfig] tells clients instead of the
// listeners' own, by listener; 0 where it names none.
func toldPorts(ac config.Autoconfig) map[string]int {
	return map[string]int{"imaps": ac.IMAPSPort, "imap": ac.IMAPPort, "pop3s": ac.POP3SPort, "pop3": ac.POP3Port,
		"submissions": ac.SubmissionsPort, "submission": ac.SubmissionPort}
}

// publicAddr reports whether a listen address can be reached from other
// machines: it is on and not on a loopback address.
func publicAddr(addr string) bool {
	if !listenerOn(addr) {
		return false
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return !ip.IsLoopback()
	}
	return host != "localhost"
}

// configuredDomains is autoconfig.domains as the answers compare domains:
// lower case, without a final dot.
func configuredDomains(cfg config.Config) []string {
	list := make([]string, len(cfg.Autoconfig.Domains))
	for i, d := range cfg.Autoconfig.Domains {
		list[i] = strings.ToLower(strings.TrimSuffix(d, "."))
	}
	return list
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

func runAutoconfig(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("autoconfig", `usage: buzon autoconfig dns [--config FILE] [DOMAIN...]

Prints the DNS records that let mail clients find this server for each
DOMAIN (default: autoconfig.domains): autoconfig.DOMAIN and
autodiscover.DOMAIN for the answers of listen.autoconfig and
listen.autoconfigs, and the SRV records of RFC 6186 and RFC 8314 for the
servers those answers name, as the configuration sets them.`, stderr)
	var cf commonFlags
	fs.StringVar(&cf.configFile, "config", "", "TOML configuration file")
	_, domains, err := parseSubcommand(fs, args, map[string][2]int{"dns": {0, 1 << 10}})
	if err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	if len(domains) == 0 {
		domains = configuredDomains(cfg)
	}
	if len(domains) == 0 {
		fs.Usage()
		return usageError{"autoconfig dns: name the mail domains (or set autoconfig.domains)"}
	}
	// The listeners as configured: the ports they will be bound to.
	bound := map[string]string{}
	for name, addr := range map[string]string{"imaps": cfg.Listen.IMAPS, "imap": cfg.Listen.IMAP, "pop3s": cfg.Listen.POP3S, "pop3": cfg.Listen.POP3,
		"submissions": cfg.Listen.Submissions, "submission": cfg.Listen.Submission} {
		if listenerOn(addr) {
			bound[name] = addr
		}
	}
	incoming, outgoing, err := advertised(cfg, bound)
	if err != nil {
		return err
	}
	for _, d := range domains {
		if err := writeDNSRecords(stdout, cfg, strings.ToLower(strings.TrimSuffix(d, ".")), incoming, outgoing); err != nil {
			return err
		}
	}
	return nil
}

// writeDNSRecords writes, in zone file syntax, the records for one mail
// domain.
func writeDNSRecords(w io.Writer, cfg config.Config, domain string, incoming, outgoing []autoconfig.Endpoint) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fqdn := func(name string) string { return strings.TrimSuffix(name, ".") + "." }
	host := incoming[0].Host
	fmt.Fprintf(tw, "; mail clients of %s (buzon autoconfig dns)\n", domain)
	if listenerOn(cfg.Listen.Autoconfig) || listenerOn(cfg.Listen.Autoconfigs) {
		fmt.Fprintf(tw, "; Thunderbird asks autoconfig.%[1]s (HTTPS, then HTTP), Outlook autodiscover.%[1]s (HTTPS)\n", domain)
		fmt.Fprintf(tw, "autoconfig.%s.\tIN\tCNAME\t%s\n", domain, fqdn(host))
		fmt.Fprintf(tw, "autodiscover.%s.\tIN\tCNAME\t%s\n", domain, fqdn(host))
		if listenerOn(cfg.Listen.Autoconfigs) {
			// Outlook and Thunderbird take the host from it and ask on 443.
			fmt.Fprintf(tw, "_autodiscover._tcp.%s.\tIN\tSRV\t0 0 443 %s\n", domain, fqdn(host))
		}
	}
	fmt.Fprintf(tw, "; RFC 6186 SRV records, the preferred server first\n")
	writeSRV(tw, domain, incoming, []string{"imaps", "imap", "pop3s", "pop3"}, true)
	// Of buzon's own submission listeners, "." says one is off; of an MTA
	// elsewhere only the service configured is known.
	writeSRV(tw, domain, outgoing, []string{"submissions", "submission"}, len(outgoing) > 0 && cfg.Autoconfig.Submission == "")
	if len(outgoing) == 0 {
		fmt.Fprintf(tw, "; no submission server: turn on listen.submissions or listen.submission, or set autoconfig.submission to your MTA's, and add its _submissions._tcp or _submission._tcp\n")
	}
	fmt.Fprintln(tw)
	return tw.Flush()
}

// writeSRV writes the SRV records of services, in that order, each for
// the first of servers that offers it: priority orders the services,
// preferred first (RFC 6186 3.4, and RFC 8314 5.1 for submissions), by
// the server's place in servers. A service none offers gets the target
// "." (not offered, so clients need not try) if dotAbsent, else no record.
func writeSRV(w io.Writer, domain string, servers []autoconfig.Endpoint, services []string, dotAbsent bool) {
	targets := map[string]string{}
	for i, e := range servers {
		if s := srvService(e); targets[s] == "" {
			targets[s] = fmt.Sprintf("%d 1 %d %s.", 10*i, e.Port, strings.TrimSuffix(e.Host, "."))
		}
	}
	for _, s := range services {
		target, ok := targets[s]
		if !ok && !dotAbsent {
			continue
		}
		if !ok {
			target = "0 0 0 ."
		}
		fmt.Fprintf(w, "_%s._tcp.%s.\tIN\tSRV\t%s\n", s, domain, target)
	}
}

// srvService is the SRV service name of a server: imaps, imap, pop3s or
// pop3 (RFC 6186), submissions for SMTP over implicit TLS (RFC 8314 5.1),
// submission for SMTP with STARTTLS.
func srvService(e autoconfig.Endpoint) string {
	switch {
	case e.Protocol == "smtp" && e.Security == autoconfig.TLS:
		return "submissions"
	case e.Protocol == "smtp":
		return "submission"
	case e.Security == autoconfig.TLS:
		return e.Protocol + "s"
	}
	return e.Protocol
}
