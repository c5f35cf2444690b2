package main

import (
	"fmt"
	"io"

	"github.com/buzon-mail/buzon/internal/config"
)

func runConfig(args []string, _ io.Reader, stdout, _ io.Writer) error {
	if len(args) != 1 || args[0] != "example" {
		return usageError{"usage: buzon config example"}
	}
	ex, err := config.Example()
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(stdout, ex)
	return err
}
