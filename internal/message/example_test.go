package message_test

import (
	"fmt"
	"io"
	"strings"

	"github.com/buzon-mail/buzon/internal/message"
)

func ExampleParse() {
	raw := "From: Ann <ann@example.org>\r\n" +
		"Subject: =?UTF-8?Q?Caf=C3=A9?=\r\n" +
		"Content-Type: multipart/alternative; boundary=b\r\n" +
		"\r\n" +
		"--b\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Hello\r\n" +
		"--b\r\n" +
		"Content-Type: text/html; charset=iso-8859-1\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"<p>Caf=E9</p>\r\n" +
		"--b--\r\n"

	root, err := message.Parse(strings.NewReader(raw))
	if err != nil {
		panic(err) // only a read error can fail Parse
	}
	fmt.Println(root.Envelope.From[0].Mailbox, root.Envelope.From[0].Host)
	fmt.Println(message.DecodeHeaderValue(root.Envelope.Subject))
	for i, p := range root.Parts {
		fmt.Printf("%d: %s/%s, %d bytes, %d lines\n", i+1, p.MediaType, p.MediaSubtype, p.End-p.BodyStart, p.Lines)
	}

	// BODY[2]: the raw body of part 2, and its decoded text for SEARCH.
	start, end, _ := root.SectionRange([]int{2}, message.SpecifierNone)
	fmt.Printf("%q\n", raw[start:end])
	part, _ := root.Section([]int{2})
	text, _ := io.ReadAll(part.TextReader(strings.NewReader(raw[start:end])))
	fmt.Println(string(text))

	// Store the structure; decode it again on FETCH.
	stored := message.Marshal(root)
	again, _ := message.Unmarshal(stored)
	fmt.Println(again.MediaType + "/" + again.MediaSubtype)
	// Output:
	// ann example.org
	// Café
	// 1: text/plain, 5 bytes, 0 lines
	// 2: text/html, 13 bytes, 0 lines
	// "<p>Caf=E9</p>"
	// <p>Café</p>
	// multipart/alternative
}

func ExampleHeaderFields() {
	header := []byte("From: ann@example.org\r\nSubject: Hello,\r\n world\r\nTo: bob@example.com\r\n\r\n")
	fmt.Printf("%q\n", message.HeaderFields(header, []string{"SUBJECT"}, false))
	fmt.Printf("%q\n", message.HeaderFields(header, []string{"subject"}, true))
	// Output:
	// "Subject: Hello,\r\n world\r\n\r\n"
	// "From: ann@example.org\r\nTo: bob@example.com\r\n\r\n"
}

func ExampleDecodeTransfer() {
	r := message.DecodeTransfer("base64", strings.NewReader("SGVs\r\nbG8h\r\n"))
	b, _ := io.ReadAll(r)
	fmt.Println(string(b))
	// Output: Hello!
}

func ExampleCanonicalText() {
	// A text part whose sender base64-encoded it with Unix line breaks.
	r := message.CanonicalText(message.DecodeTransfer("base64", strings.NewReader("bGluZTEKbGluZTIK")))
	b, _ := io.ReadAll(r)
	fmt.Printf("%q\n", b)
	// Output: "line1\r\nline2\r\n"
}
