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
		for _, name := range cfg.Autoconfig.Advertise {
			if addr, on := bound[name]; on && !publicAddr(addr) && told[name] == 0 {
				log.Warn("autoconfig: clients are told of a listener they cannot reach, bound to loopback: give it a public address, or set the port a proxy forwards to it (autoconfig."+name+"_port), or leave it out of autoconfig.advertise",
					"listener", name, "addr", addr)
			}
		}
	}
	if outgoing == nil {
		log.Warn("autoconfig: no outgoing server to tell clients (autoconfig.submission): Thunderbird ignores an answer without one, and no Apple profile is offered")
	}
	domains := func(ctx context.Context) ([]string, error) { return servedDomains(ctx, st) }
	if len(cfg.Autoconfig.Domains) > 0 {
		list := configuredDomains(cfg)
		domains = func(context.Context) ([]string, error) { return list, nil }
	}
	return autoconfig.New(autoconfig.Config{Incoming: incoming, Outgoing: outgoing, Domains: domains, Logger: log})
}

// advertised returns the servers clients are told of: the listeners of
// autoconfig.advertise that are on (in bound), in its order, on the port
// they are bound to unless the configuration names another, at
// autoconfig.host or the host name; and the submission server, if one is
// configured.
func advertised(cfg config.Config, bound map[string]string) ([]autoconfig.Endpoint, *autoconfig.Endpoint, error) {
	ac := cfg.Autoconfig
	host := ac.Host
	if host == "" {
		host = cfg.Hostname
	}
	told := toldPorts(ac)
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
		return nil, nil, fmt.Errorf("autoconfig: none of autoconfig.advertise (%s) has its listener on: nothing to tell clients", strings.Join(ac.Advertise, ", "))
	}
	if ac.Submission == "" {
		return incoming, nil, nil
	}
	h, p, _ := net.SplitHostPort(ac.Submission) // checked by Validate
	port, _ := strconv.Atoi(p)
	outgoing := &autoconfig.Endpoint{Protocol: "smtp", Host: h, Port: port, Security: autoconfig.STARTTLS}
	if ac.SubmissionSecurity == "tls" || ac.SubmissionSecurity == "" && port == 465 {
		outgoing.Security = autoconfig.TLS
	}
	return incoming, outgoing, nil
}

// toldPorts are the ports [autoconfig] tells clients instead of the
// listeners' own, by listener; 0 where it names none.
func toldPorts(ac config.Autoconfig) map[string]int {
	return map[string]int{"imaps": ac.IMAPSPort, "imap": ac.IMAPPort, "pop3s": ac.POP3SPort, "pop3": ac.POP3Port}
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
	for name, addr := range map[string]string{"imaps": cfg.Listen.IMAPS, "imap": cfg.Listen.IMAP, "pop3s": cfg.Listen.POP3S, "pop3": cfg.Listen.POP3} {
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
func writeDNSRecords(w io.Writer, cfg config.Config, domain string, incoming []autoconfig.Endpoint, outgoing *autoconfig.Endpoint) error {
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
	// RFC 6186 3.4: priority orders the services, preferred first;
	// target "." says a service is not offered, so clients need not try.
	fmt.Fprintf(tw, "; RFC 6186 SRV records, the preferred server first\n")
	services := map[string]string{}
	for i, e := range incoming {
		service := e.Protocol
		if e.Security == autoconfig.TLS {
			service += "s"
		}
		if _, dup := services[service]; !dup {
			services[service] = fmt.Sprintf("%d 1 %d %s", 10*i, e.Port, fqdn(e.Host))
		}
	}
	for _, service := range []string{"imaps", "imap", "pop3s", "pop3"} {
		target, ok := services[service]
		if !ok {
			target = "0 0 0 ."
		}
		fmt.Fprintf(tw, "_%s._tcp.%s.\tIN\tSRV\t%s\n", service, domain, target)
	}
	if outgoing != nil {
		service := "submission" // STARTTLS (RFC 6186)
		if outgoing.Security == autoconfig.TLS {
			service = "submissions" // implicit TLS (RFC 8314 5.1)
		}
		fmt.Fprintf(tw, "_%s._tcp.%s.\tIN\tSRV\t0 1 %d %s\n", service, domain, outgoing.Port, fqdn(outgoing.Host))
	} else {
		fmt.Fprintf(tw, "; no autoconfig.submission: add _submission._tcp or _submissions._tcp for your MTA\n")
	}
	fmt.Fprintln(tw)
	return tw.Flush()
}
