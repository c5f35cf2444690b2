package smtpserver

import (
	"fmt"
	"io"
)

// go-smtp answers some commands itself, before any Session method runs,
// and no option changes those answers. The few that are wrong for LMTP
// are corrected on their way out: the connection Serve accepted matches
// each line go-smtp writes against replyFixes and sends the fix instead.
//
// That leans on two things go-smtp does not promise: the text of its
// replies, and one Write per reply line (textproto's PrintfLine flushes
// every line, and these are far shorter than its buffer). The LMTP
// transcript tests check every fix, so a go-smtp that changes either
// fails them rather than sending its own replies unnoticed. Were STARTTLS
// offered, the replies after it would be written through TLS above this
// connection and escape the fixes. The alternative, a copy of go-smtp's
// command loop, would be ours to keep in step with every release for the
// sake of six reply codes and a number.

// replyFixes returns go-smtp's reply lines that a connection corrects,
// each mapped to the line sent instead, for a size limit of maxSize
// octets (0: none).
func replyFixes(maxSize int64) map[string]string {
	fixes := map[string]string{}
	// A command out of sequence is 503, not 502 ("not implemented"):
	// RFC 5321 4.1.4, and RFC 2033 4.2 for a DATA with no successful
	// RCPT, RFC 3030 2 for a DATA among BDAT chunks.
	for _, text := range []string{
		"Please introduce yourself first.",         // MAIL before LHLO
		"Missing MAIL FROM command.",               // RCPT before MAIL
		"Missing RCPT TO command.",                 // DATA or BDAT without a recipient
		"MAIL not allowed during message transfer", // between BDAT chunks
		"RCPT not allowed during message transfer",
		"DATA not allowed during message transfer",
	} {
		fixes["502 5.5.1 "+text+"\r\n"] = "503 5.5.1 " + text + "\r\n"
	}
	// go-smtp knows no size limit (see New), so LHLO says SIZE alone;
	// the limit the server applies goes with it (RFC 1870 4).
	if maxSize > 0 {
		fixes["250-SIZE\r\n"] = fmt.Sprintf("250-SIZE %d\r\n", maxSize)
		fixes["250 SIZE\r\n"] = fmt.Sprintf("250 SIZE %d\r\n", maxSize)
	}
	return fixes
}

// Write sends p, or the fix for it when p is a reply line to correct.
func (c *bufferedConn) Write(p []byte) (int, error) {
	fix, ok := c.fixes[string(p)]
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := io.WriteString(c.Conn, fix); err != nil {
		return 0, err
	}
	return len(p), nil
}
