package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/buzon-mail/buzon/internal/config"
)

func runConfig(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	const usage = "usage: buzon config example"
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		fmt.Fprintln(stderr, usage+"\n\nPrints every setting of the configuration file, documented, at its default.")
		return flag.ErrHelp
	}
	if len(args) != 1 || args[0] != "example" {
		return usageError{usage}
	}
	ex, err := config.Example()
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(stdout, ex)
	return err
}
