package message

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// benchMessage builds a typical ~30 KB message: multipart/mixed with a
// multipart/alternative (text and HTML) and a base64 attachment.
func benchMessage() []byte {
	var b strings.Builder
	b.WriteString("Return-Path: <ann@example.org>\r\n")
	for i := range 6 {
		fmt.Fprintf(&b, "Received: from relay%d.example.org (relay%d.example.org [192.0.2.%d])\r\n\tby mx.example.com with ESMTPS id %08x\r\n\tfor <bob@example.com>; Tue, 3 Mar 2026 10:00:0%d +0000\r\n", i, i, i, i*7919, i)
	}
	b.WriteString("From: \"Ann Example\" <ann@example.org>\r\n" +
		"To: Bob <bob@example.com>, carol@example.net, Team: dave@example.com, eve@example.com;\r\n" +
		"Cc: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.de>\r\n" +
		"Subject: =?UTF-8?Q?Quarterly_report_=E2=80=94_Q1?=\r\n" +
		"Date: Tue, 3 Mar 2026 10:00:00 +0100\r\n" +
		"Message-ID: <bench-1@example.org>\r\n" +
		"In-Reply-To: <earlier@example.com>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"----=_Part_0_123456.789\"\r\n\r\n" +
		"This is a multi-part message in MIME format.\r\n\r\n" +
		"------=_Part_0_123456.789\r\n" +
		"Content-Type: multipart/alternative; boundary=\"----=_Part_1_654321.987\"\r\n\r\n" +
		"------=_Part_1_654321.987\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	for i := range 40 {
		fmt.Fprintf(&b, "Line %d of the report, with a caf=C3=A9 and a soft line break that goes =\r\non.\r\n", i)
	}
	b.WriteString("\r\n------=_Part_1_654321.987\r\n" +
		"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n")
	for i := range 80 {
		fmt.Fprintf(&b, "<p style=3D\"margin:0\">Line %d of the report, with a caf=C3=A9.</p>\r\n", i)
	}
	b.WriteString("\r\n------=_Part_1_654321.987--\r\n\r\n" +
		"------=_Part_0_123456.789\r\n" +
		"Content-Type: application/pdf; name=\"report.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"Content-Disposition: attachment; filename=\"report.pdf\"\r\n\r\n")
	data := bytes.Repeat([]byte("%PDF-1.4 binary-ish content \x00\x01\x02\xff"), 600)
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n------=_Part_0_123456.789--\r\n")
	return []byte(b.String())
}

func BenchmarkParse(b *testing.B) {
	raw := benchMessage()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	raw := benchMessage()
	root, err := Parse(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	enc := Marshal(root)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	root, err := Parse(bytes.NewReader(benchMessage()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Marshal(root)
	}
}

// TestBenchMessage keeps the benchmark's message honest: about 30 KB,
// and the shape it claims.
func TestBenchMessage(t *testing.T) {
	raw := benchMessage()
	if len(raw) < 25000 || len(raw) > 40000 {
		t.Errorf("benchmark message has %d bytes, want about 30 KB", len(raw))
	}
	root, err := Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, raw, root)
	if len(root.Parts) != 2 || len(root.Parts[0].Parts) != 2 {
		t.Errorf("unexpected shape:\n%s", dumpTree(root))
	}
}
