package main

import (
	"io"

	"github.com/buzon-mail/buzon/internal/bench"
)

// runBench is `buzon bench`: the load generator of internal/bench, which
// drives buzon or any other IMAP/POP3/LMTP server.
func runBench(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	return bench.Main(args, stdout, stderr)
}
