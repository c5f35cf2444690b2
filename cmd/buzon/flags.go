package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/buzon-mail/buzon/internal/config"
)

// parseInterleaved parses flags that may come before, between or after
// positional arguments ("user add alice@example.org --data /srv/mail"), and
// returns the positional ones in order. "--" ends flag parsing.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// flag stops at "--" and consumes it; what follows is positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// parseSubcommand parses the arguments of a command made of subcommands
// (buzon user, alias, sieve): flags anywhere among them (parseInterleaved),
// then a subcommand of want, which gives the fewest and the most
// arguments each takes. It returns the subcommand and its arguments.
func parseSubcommand(fs *flag.FlagSet, args []string, want map[string][2]int) (string, []string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return "", nil, flagError(err)
	}
	if len(pos) == 0 {
		fs.Usage()
		return "", nil, usageError{"missing subcommand"}
	}
	sub, pos := pos[0], pos[1:]
	n, ok := want[sub]
	if !ok {
		return "", nil, usageError{fmt.Sprintf("unknown subcommand %q", sub)}
	}
	if len(pos) < n[0] || len(pos) > n[1] {
		fs.Usage()
		return "", nil, usageError{fmt.Sprintf("%s %s: wrong number of arguments", strings.TrimPrefix(fs.Name(), "buzon "), sub)}
	}
	return sub, pos, nil
}

// commonFlags are the flags every command that touches the store takes.
type commonFlags struct {
	data       string
	configFile string
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.data, "data", "", "data folder (default ./buzon-data, or the config file's)")
	fs.StringVar(&c.configFile, "config", "", "TOML configuration file")
}

// load reads the configuration, applies --data and validates the result.
func (c *commonFlags) load() (config.Config, error) {
	cfg, err := c.read()
	if err != nil {
		return config.Config{}, err
	}
	return cfg, cfg.Validate()
}

// read reads the configuration and applies --data, for a command with
// more flags to apply before it validates: a flag overrides a setting the
// file gets wrong.
func (c *commonFlags) read() (config.Config, error) {
	cfg := config.Default()
	if c.configFile != "" {
		var err error
		if cfg, err = config.Load(c.configFile); err != nil {
			return config.Config{}, err
		}
	}
	if c.data != "" {
		cfg.Data = c.data
	}
	if cfg.Hostname == "" {
		cfg.Hostname = config.DefaultHostname()
	}
	return cfg, nil
}

// storeFlags are the flags that name, to another command, the store these
// flags name: the same --config and --data.
func (c *commonFlags) storeFlags() string {
	var parts []string
	if c.configFile != "" {
		parts = append(parts, "--config", shellQuote(c.configFile))
	}
	if c.data != "" || c.configFile == "" {
		data := c.data
		if data == "" {
			data = config.Default().Data
		}
		parts = append(parts, "--data", shellQuote(data))
	}
	return strings.Join(parts, " ")
}

// self is how to run this binary again in a command line shown to a
// person: as it was started when that was by its path (bin/buzon), so the
// line works where buzon is not on the PATH.
func self() string {
	if strings.ContainsRune(os.Args[0], '/') {
		return shellQuote(os.Args[0])
	}
	return "buzon"
}

// shellQuote quotes s for a POSIX shell where it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// newFlagSet makes the flag set of a command, whose --help prints usage,
// then the flags.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("buzon "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, usage)
		fs.PrintDefaults()
	}
	return fs
}
