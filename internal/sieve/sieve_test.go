package sieve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		script string
		line   int
		msg    string // a part of the message
	}{
		{"unknown command", "keep;\n\nfrob;", 3, `unknown command "frob"`},
		{"unknown test", "if frob { keep; }", 1, `unknown test "frob"`},
		{"missing semicolon", "keep\n", 1, "missing ; after keep"},
		{"missing brace", "if true {\n keep;\n", 3, "missing }"},
		{"stray brace", "keep; }", 1, "unexpected }"},
		{"unterminated string", "require \"fileinto\";\nfileinto \"x;\n", 3, "string started at line 2 does not end"},
		{"unterminated comment", "keep; /* no end\n\n", 3, "comment started at line 1 does not end"},
		{"unterminated text", "require \"variables\";\nset \"a\" text:\nhello\n", 4, "text: started at line 2 has no line"},
		{"text junk", "require \"variables\";\nset \"a\" text: x\n.\n;", 2, "text: must be followed"},
		{"require late", "keep;\nrequire \"fileinto\";", 2, "require must come before"},
		{"require nested", "if true { require \"fileinto\"; }", 1, "require must come before"},
		{"unknown extension", "require [\"fileinto\", \"frobnicate\"];", 1, `extension "frobnicate" is not supported`},
		{"vacation", "require \"vacation\";", 1, "no relay to send replies through (submission.relay)"},
		{"vacation-seconds", "require \"vacation-seconds\";", 1, "no relay to send replies through"},
		{"vacation unrequired", "vacation \"away\";", 1, "no relay to send replies through"},
		{"reject", "require [\"reject\"];", 1, "buzon does not refuse mail after taking it"},
		{"enotify", "require \"enotify\";", 1, "buzon sends no notifications"},
		{"redirect", "keep;\nredirect \"a@example.org\";", 2, "redirect is not supported: this server has no relay to forward mail through"},
		{"fileinto not required", "fileinto \"x\";", 1, `fileinto needs require "fileinto"`},
		{"flags not required", "keep :flags \"\\\\Seen\";", 1, `:flags needs require "imap4flags"`},
		{"copy not required", "require \"fileinto\";\nfileinto :copy \"x\";", 2, `:copy needs require "copy"`},
		{"create not required", "require \"fileinto\";\nfileinto :create \"x\";", 2, `:create needs require "mailbox"`},
		{"regex not required", "if header :regex \"a\" \"b\" { keep; }", 1, `:regex needs require "regex"`},
		{"detail not required", "if address :detail \"to\" \"b\" { keep; }", 1, `:detail needs require "subaddress"`},
		{"numeric not required", "if header :comparator \"i;ascii-numeric\" \"a\" \"1\" { keep; }", 1, "comparator-i;ascii-numeric"},
		{"unknown comparator", "if header :comparator \"i;frob\" \"a\" \"1\" { keep; }", 1, `unknown comparator "i;frob"`},
		{"numeric contains", "require \"comparator-i;ascii-numeric\";\nif header :contains :comparator \"i;ascii-numeric\" \"a\" \"1\" { keep; }", 2, "cannot do substring"},
		{"two match types", "if header :is :contains \"a\" \"b\" { keep; }", 1, "more than one match type"},
		{"bad relational", "require \"relational\";\nif header :value \"gg\" \"a\" \"b\" { keep; }", 2, `unknown relational operator "gg"`},
		{"bad regex", "require \"regex\";\nif header :regex \"a\" \"(\" { keep; }", 2, "invalid regular expression"},
		{"unknown tag", "if header :frob \"a\" \"b\" { keep; }", 1, "unknown tag :frob"},
		{"tag after positional", "if header \"a\" :is \"b\" { keep; }", 1, "after the positional"},
		{"too few arguments", "if header \"a\" { keep; }", 1, "takes 2 positional"},
		{"number for string", "if header 1 \"b\" { keep; }", 1, "must be a string list"},
		{"size without tag", "if size 100 { keep; }", 1, "size needs :over or :under"},
		{"size both", "if size :over 1 :under 2 { keep; }", 1, "one of :over and :under"},
		{"elsif alone", "elsif true { keep; }", 1, "elsif without an if"},
		{"else after else", "if true {} else {} else {}", 1, "else without an if"},
		{"if without block", "if true;", 1, "if needs a block"},
		{"not with list", "if not (true) { keep; }", 1, "not takes one test"},
		{"anyof without list", "if anyof true { keep; }", 1, "list of tests in parentheses"},
		{"keep with block", "keep { }", 1, "keep takes no block"},
		{"envelope part", "require \"envelope\";\nif envelope \"auth\" \"x\" { keep; }", 2, `unknown envelope part "auth"`},
		{"bad variable name", "require \"variables\";\nset \"a-b\" \"c\";", 2, `"a-b" is not a valid variable name`},
		{"set modifiers clash", "require \"variables\";\nset :lower :upper \"a\" \"b\";", 2, ":lower and :upper cannot be used together"},
		{"unknown namespace", "require [\"variables\", \"fileinto\"];\nfileinto \"a/${env.name}\";", 2, `unknown variable namespace "env"`},
		{"unknown namespace, deeper", "require \"variables\";\nif string \"${a.b.1}\" \"\" { keep; }", 2, `unknown variable namespace "a"`},
		{"bad unicode", "require \"encoded-character\";\nif header :is \"a\" \"${unicode:D800}\" { keep; }", 2, "not a Unicode character"},
		{"bad zone", "require \"date\";\nif date :zone \"1\" \"date\" \"year\" \"2026\" { keep; }", 2, "invalid time zone"},
		{"bad date part", "require \"date\";\nif date \"date\" \"era\" \"x\" { keep; }", 2, `unknown date part "era"`},
		{"last without index", "require \"index\";\nif header :last :is \"a\" \"b\" { keep; }", 2, ":last needs :index"},
		{"number too large", "if size :over 99999999999999999999 { keep; }", 1, "too large"},
		{"number suffix", "if size :over 10X { keep; }", 1, "other than K, M or G"},
		{"nesting", strings.Repeat("if true {\n", 40) + strings.Repeat("}", 40), 33, "deeper than 32"},
		{"empty mailbox", "require \"fileinto\";\nfileinto \"\";", 2, "invalid mailbox name"},
		{"address of subject", "keep;\nif address :is [\"to\", \"Subject\"] \"x\" { keep; }", 2, "Subject is not a field of addresses"},
		{"not UTF-8 mailbox", "require \"fileinto\";\nfileinto \"\xff\";", 2, "not UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile([]byte(tt.script))
			var ce *CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("Compile = %v, want a *CompileError", err)
			}
			if ce.Line != tt.line || !strings.Contains(ce.Msg, tt.msg) {
				t.Errorf("Compile = %q at line %d, want %q at line %d", ce.Msg, ce.Line, tt.msg, tt.line)
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	tests := []struct{ name, script string }{
		{"empty", ""},
		{"comments only", "# nothing\n/* at\nall */\n"},
		{"require list", `require ["fileinto", "FileInto", "comparator-i;octet"]; fileinto "x";`},
		{"identifiers any case", `KEEP; If TRUE { Stop; }`},
		{"tags any order", `require ["relational","comparator-i;ascii-numeric"]; if header :comparator "i;ascii-numeric" :value "gt" "x" "1" { keep; }`},
		{"bare LF text", "require \"variables\";\nset \"a\" text:\nline\n.\n;\n"},
		{"CRLF text", "require \"variables\";\r\nset \"a\" text:\r\nline\r\n.\r\n;\r\n"},
		{"numbers", `if anyof (size :over 1K, size :over 1m, size :under 2G) { keep; }`},
		{"escapes", `if header :is "subject" "a\"b\\c\d" { keep; }`},
		{"deep but allowed", strings.Repeat("if true {\n", 30) + strings.Repeat("}", 30)},
		{"elsif chain", `if false { keep; } elsif false { keep; } elsif true { discard; } else { stop; }`},
		{"empty block", `if true {}`},
		{"dotted but no namespace", `require ["variables","fileinto"]; fileinto "${a.}${.a}${a..b}${a.b-c}";`},
		{"namespace without variables", `require "fileinto"; fileinto "${env.name}";`},
		{"nested test lists", `if anyof (allof (true, not false), anyof (false)) { keep; }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile([]byte(tt.script)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestExtensions(t *testing.T) {
	exts := Extensions()
	for _, ext := range exts {
		if _, err := Compile([]byte(fmt.Sprintf("require %q;", ext))); err != nil {
			t.Errorf("require %q: %v", ext, err)
		}
		if !supported[ext] {
			t.Errorf("%q is listed but not supported", ext)
		}
	}
	for ext := range supported {
		if !slices.Contains(exts, ext) && ext != "comparator-i;octet" && ext != "comparator-i;ascii-casemap" {
			t.Errorf("%q is supported but not listed", ext)
		}
	}
	for ext := range sendsMail {
		if slices.Contains(exts, ext) {
			t.Errorf("%q is listed though this server sends no mail", ext)
		}
	}
	// With a relay, vacation and vacation-seconds and nothing else that
	// sends mail.
	withRelay := ExtensionsWith(Options{Vacation: true})
	for ext := range sendsMail {
		if slices.Contains(withRelay, ext) != vacationExtensions[ext] {
			t.Errorf("%q listed %v with a relay", ext, slices.Contains(withRelay, ext))
		}
	}
	for _, ext := range withRelay {
		if _, err := CompileWith([]byte(fmt.Sprintf("require %q;", ext)), Options{Vacation: true}); err != nil {
			t.Errorf("require %q with a relay: %v", ext, err)
		}
	}
}

const testMsg = "Return-Path: <alice@example.org>\r\n" +
	"From: Alice <alice@example.org>\r\n" +
	"To: Bob <bob+lists@example.net>, carol@example.com\r\n" +
	"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from [list]\r\n" +
	"X-Spam-Score: 7\r\n" +
	"X-Folded: one\r\n two\r\n" +
	"X-Outlook: quarterly\r\n\tbudget\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hello Bob, the code is 4711.\r\n"

// execute compiles and runs a script on testMsg and returns the actions
// written as "keep", "fileinto NAME", "discard", with " :create" and
// " [flags]".
func execute(t *testing.T, script string, env Envelope, e Environment) ([]string, error) {
	t.Helper()
	s, err := Compile([]byte(script))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	acts, err := s.Execute(context.Background(), testMessage([]byte(testMsg)), env, e)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range acts {
		var s string
		switch a.Kind {
		case Keep:
			s = "keep"
		case FileInto:
			s = "fileinto " + a.Mailbox
		case Discard:
			s = "discard"
		}
		if a.Create {
			s += " :create"
		}
		if len(a.Flags) > 0 {
			s += " " + fmt.Sprint(a.Flags)
		}
		out = append(out, s)
	}
	return out, nil
}

// folders is an account with INBOX and the mailboxes named.
type folders []string

func (f folders) MailboxExists(_ context.Context, name string) (bool, error) {
	return strings.EqualFold(name, "INBOX") || slices.Contains(f, name), nil
}

func TestExecute(t *testing.T) {
	env := Envelope{From: "alice@example.org", To: "bob+lists@example.net"}
	tests := []struct {
		name   string
		script string
		want   []string
	}{
		{"implicit keep", ``, []string{"keep"}},
		{"keep", `keep;`, []string{"keep"}},
		{"discard", `discard;`, []string{"discard"}},
		{"discard then keep", `discard; keep;`, []string{"keep"}},
		{"stop", `stop; discard;`, []string{"keep"}},
		{"fileinto cancels implicit keep", `require "fileinto"; fileinto "A";`, []string{"fileinto A"}},
		{"fileinto and keep", `require "fileinto"; fileinto "A"; keep;`, []string{"fileinto A", "keep"}},
		{"fileinto INBOX is the caller's", `require "fileinto"; fileinto "inbox"; keep;`, []string{"fileinto inbox", "keep"}},
		{"duplicates in order", `require ["fileinto","imap4flags"]; fileinto "A"; fileinto :flags "x" "A"; fileinto "B";`, []string{"fileinto A", "fileinto A [x]", "fileinto B"}},
		{"copy keeps implicit keep", `require ["fileinto","copy"]; fileinto :copy "A";`, []string{"fileinto A", "keep"}},
		{"copy then discard", `require ["fileinto","copy"]; fileinto :copy "A"; discard;`, []string{"fileinto A"}},
		{"create", `require ["fileinto","mailbox"]; fileinto :create "A/B";`, []string{"fileinto A/B :create"}},
		{"mailboxexists", `require ["fileinto","mailbox"]; if mailboxexists "Lists" { fileinto "Lists"; } if mailboxexists ["Lists", "Nope"] { discard; }`, []string{"fileinto Lists"}},
		{"header decoded", `require "fileinto"; if header :contains "subject" "Grüße" { fileinto "A"; }`, []string{"fileinto A"}},
		{"header casemap ascii only", `require "fileinto"; if header :contains "subject" "GRÜSSE" { fileinto "A"; }`, []string{"keep"}},
		{"header octet", `require "fileinto"; if header :is :comparator "i;octet" "x-spam-score" "7" { fileinto "A"; }`, []string{"fileinto A"}},
		{"header unfolded", `require "fileinto"; if header :is "x-folded" "one two" { fileinto "A"; }`, []string{"fileinto A"}},
		{"folding tab as space", `require "fileinto"; if header :is "x-outlook" "quarterly budget" { fileinto "A"; }`, []string{"fileinto A"}},
		{"header missing", `require "fileinto"; if header :contains "x-nope" "" { fileinto "A"; }`, []string{"keep"}},
		{"header empty key", `require "fileinto"; if header :contains "subject" "" { fileinto "A"; }`, []string{"fileinto A"}},
		{"exists", `require "fileinto"; if exists ["From", "x-spam-score"] { fileinto "A"; }`, []string{"fileinto A"}},
		{"address all", `require "fileinto"; if address :is "to" "CAROL@example.com" { fileinto "A"; }`, []string{"fileinto A"}},
		{"address localpart", `require "fileinto"; if address :localpart :is "from" "alice" { fileinto "A"; }`, []string{"fileinto A"}},
		{"address domain", `require "fileinto"; if address :domain :is "to" "example.net" { fileinto "A"; }`, []string{"fileinto A"}},
		{"address user", `require ["fileinto","subaddress"]; if address :user :is "to" "bob" { fileinto "A"; }`, []string{"fileinto A"}},
		{"address detail", `require ["fileinto","subaddress"]; if address :detail :is "to" "lists" { fileinto "A"; }`, []string{"fileinto A"}},
		{"address no detail", `require ["fileinto","subaddress"]; if address :detail :matches "from" "*" { fileinto "A"; }`, []string{"keep"}},
		{"envelope", `require ["fileinto","envelope","subaddress"]; if envelope :detail "to" "lists" { fileinto "A"; }`, []string{"fileinto A"}},
		{"envelope from", `require ["fileinto","envelope"]; if envelope :domain "from" "example.org" { fileinto "A"; }`, []string{"fileinto A"}},
		{"size over", `require "fileinto"; if size :over 100 { fileinto "A"; }`, []string{"fileinto A"}},
		{"size under", `require "fileinto"; if size :under 100 { fileinto "A"; }`, []string{"keep"}},
		{"size exact is neither", fmt.Sprintf(`require "fileinto"; if anyof (size :over %d, size :under %d) { fileinto "A"; }`, len(testMsg), len(testMsg)), []string{"keep"}},
		{"allof short-circuits", `require ["fileinto","variables"]; if allof (false, header :matches "subject" "*") { } fileinto "x${1}";`, []string{"fileinto x"}},
		{"anyof", `require "fileinto"; if anyof (false, true) { fileinto "A"; }`, []string{"fileinto A"}},
		{"not", `require "fileinto"; if not exists "x-nope" { fileinto "A"; }`, []string{"fileinto A"}},
		{"elsif", `require "fileinto"; if false { fileinto "A"; } elsif true { fileinto "B"; } else { fileinto "C"; }`, []string{"fileinto B"}},
		{"else", `require "fileinto"; if false { fileinto "A"; } elsif false { fileinto "B"; } else { fileinto "C"; }`, []string{"fileinto C"}},
		{"matches", `require ["fileinto","variables"]; if header :matches "subject" "* from [*]" { fileinto "${2}/${1}"; }`, []string{"fileinto list/Grüße"}},
		{"matches question", `require ["fileinto","variables"]; if header :matches "x-spam-score" "?" { fileinto "s${1}"; }`, []string{"fileinto s7"}},
		{"matches escape", `require "fileinto"; if header :matches "subject" "*\\[list\\]" { fileinto "A"; }`, []string{"fileinto A"}},
		{"matches escaped star is literal", `require "fileinto"; if header :matches "subject" "\\*" { fileinto "A"; }`, []string{"keep"}},
		{"matches casemap", `require ["fileinto","variables"]; if header :matches "from" "alice *" { fileinto "${1}"; }`, []string{"fileinto <alice@example.org>"}},
		{"matches casemap capture", `require ["fileinto","variables"]; if header :matches "from" "ALICE <*>" { fileinto "${1}"; }`, []string{"fileinto alice@example.org"}},
		{"regex", `require ["fileinto","variables","regex"]; if header :regex "subject" "\\[([a-z]+)\\]$" { fileinto "${1}"; }`, []string{"fileinto list"}},
		{"regex casemap", `require ["fileinto","regex"]; if header :regex "from" "^ALICE" { fileinto "A"; }`, []string{"fileinto A"}},
		{"regex octet", `require ["fileinto","regex"]; if header :regex :comparator "i;octet" "from" "^ALICE" { fileinto "A"; }`, []string{"keep"}},
		{"body", `require ["fileinto","body"]; if body :contains "code is 4711" { fileinto "A"; }`, []string{"fileinto A"}},
		{"body raw", `require ["fileinto","body"]; if body :raw :matches "Hello*" { fileinto "A"; }`, []string{"fileinto A"}},
		{"body content", `require ["fileinto","body"]; if body :content "image" :contains "" { fileinto "A"; }`, []string{"keep"}},
		{"relational count", `require ["fileinto","relational","comparator-i;ascii-numeric"]; if address :count "eq" :comparator "i;ascii-numeric" "to" "2" { fileinto "A"; }`, []string{"fileinto A"}},
		{"relational value", `require ["fileinto","relational","comparator-i;ascii-numeric"]; if header :value "ge" :comparator "i;ascii-numeric" "x-spam-score" "5" { fileinto "A"; }`, []string{"fileinto A"}},
		{"numeric is", `require ["fileinto","comparator-i;ascii-numeric"]; if header :is :comparator "i;ascii-numeric" "x-spam-score" "007" { fileinto "A"; }`, []string{"fileinto A"}},
		{"flags", `require "imap4flags"; addflag "\\seen"; addflag ["$Junk", "\\SEEN"];`, []string{`keep [\seen $Junk]`}},
		{"setflag removeflag", `require "imap4flags"; setflag "a b c"; removeflag "B"; keep;`, []string{"keep [a c]"}},
		{"flags at the action", `require ["imap4flags","fileinto"]; addflag "a"; fileinto "A"; addflag "b";`, []string{"fileinto A [a]"}},
		{"flags tag", `require ["imap4flags","fileinto"]; addflag "a"; fileinto :flags "\\Flagged" "A"; keep;`, []string{`fileinto A [\Flagged]`, "keep [a]"}},
		{"flags as written", `require "imap4flags"; addflag ["\\Recent", "\\Frob", "ok", "b(ad", "OK"];`, []string{`keep [\Recent \Frob ok b(ad]`}},
		{"hasflag reads flags as written", `require ["imap4flags","fileinto","relational","comparator-i;ascii-numeric"]; addflag "\\Frob x"; if hasflag :count "eq" :comparator "i;ascii-numeric" "2" { fileinto "A"; }`, []string{`fileinto A [\Frob x]`}},
		{"hasflag", `require ["imap4flags","fileinto"]; addflag "$Work"; if hasflag "$work" { fileinto "A"; }`, []string{"fileinto A [$Work]"}},
		{"flag variable", `require ["imap4flags","fileinto","variables"]; addflag "v" "x"; addflag "v" "y"; if hasflag :is "v" "y" { fileinto :flags "${v}" "A"; }`, []string{"fileinto A [x y]"}},
		{"set and modifiers", `require ["fileinto","variables"]; set :upperfirst "a" "alice"; set :length "n" "Grüße"; set :quotewildcard "q" "a*"; fileinto "${a}-${n}-${q}";`, []string{`fileinto Alice-5-a\*`}},
		{"variables are not expanded twice", `require ["fileinto","variables"]; set "d" "$"; set "a" "${d}{c}"; set "c" "x"; fileinto "[${a}]";`, []string{"fileinto [${c}]"}},
		{"unknown variable empty", `require ["fileinto","variables"]; fileinto "a${nope}b${9}c";`, []string{"fileinto abc"}},
		{"not a reference", `require ["fileinto","variables"]; fileinto "a${-}b${";`, []string{"fileinto a${-}b${"}},
		{"reference inside a reference", `require ["fileinto","variables"]; set "b" "x"; fileinto "${a${b}}${hex:41}";`, []string{"fileinto ${ax}${hex:41}"}},
		{"without variables no expansion", `require "fileinto"; fileinto "${x}";`, []string{"fileinto ${x}"}},
		{"string test", `require ["fileinto","variables"]; set "a" "xy"; if string :matches "${a}" "x?" { fileinto "A"; }`, []string{"fileinto A"}},
		{"encoded character", `require ["fileinto","encoded-character"]; fileinto "${hex:41 42}${unicode:e9}";`, []string{"fileinto ABé"}},
		{"index", `require ["fileinto","index"]; if header :index 1 :last :is "x-spam-score" "7" { fileinto "A"; }`, []string{"fileinto A"}},
		{"index beyond", `require ["fileinto","index"]; if header :index 2 :contains "x-spam-score" "" { fileinto "A"; }`, []string{"keep"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := execute(t, tt.script, env, folders{"Lists"})
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("actions = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNullSender(t *testing.T) {
	// RFC 5228 5.4: the null reverse path matches the empty string,
	// whatever the address part.
	for _, part := range []string{":all", ":localpart", ":domain", ":user", ":detail"} {
		script := fmt.Sprintf(`require ["envelope","subaddress","fileinto"]; if envelope %s :is "from" "" { fileinto "A"; }`, part)
		got, err := execute(t, script, Envelope{From: "", To: "bob@example.net"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, []string{"fileinto A"}) {
			t.Errorf("%s: actions = %q", part, got)
		}
	}
}

func TestRunLimits(t *testing.T) {
	tests := []struct {
		name   string
		script string
		err    string
	}{
		{"actions", `require "fileinto";` + strings.Repeat(`fileinto "A";`, MaxActions+1), "more than 64 actions"},
		{"expansion", `require "variables"; set "a" "` + strings.Repeat("x", 4000) + `";` +
			strings.Repeat(`set "a" "${a}${a}";`, 20) + `set "b" "` + strings.Repeat("${a}", 20) + `";`, "grows past 64 KiB"},
		{"bad mailbox at run", `require ["fileinto","variables"]; fileinto "${nope}";`, "invalid mailbox name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile([]byte(tt.script))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			_, err = s.Execute(context.Background(), testMessage([]byte(testMsg)), Envelope{}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Execute = %v, want an error with %q", err, tt.err)
			}
		})
	}
}

// TestTooManyVariables: a run that sets more than maxVariables variables
// fails (TestRunLimits's other limits are in its table).
func TestTooManyVariables(t *testing.T) {
	var b strings.Builder
	b.WriteString(`require "variables";`)
	for i := range maxVariables + 1 {
		fmt.Fprintf(&b, `set "v%d" "x";`, i)
	}
	s, err := Compile([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Execute(context.Background(), testMessage([]byte(testMsg)), Envelope{}, nil); err == nil || !strings.Contains(err.Error(), "more than 256 variables") {
		t.Errorf("Execute = %v, want more than 256 variables", err)
	}
}

func TestScriptTooLarge(t *testing.T) {
	_, err := Compile(bytes.Repeat([]byte("#"), MaxScriptSize+1))
	var ce *CompileError
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "larger than") {
		t.Errorf("Compile = %v", err)
	}
}

// TestBodyBounded checks that the body test reads no more than
// maxBodyBytes of a message, however large.
func TestBodyBounded(t *testing.T) {
	s, err := Compile([]byte(`require ["body","fileinto"]; if body :raw :contains "needle" { fileinto "A"; }`))
	if err != nil {
		t.Fatal(err)
	}
	var read int64
	msg := Message{
		Header: []byte("Subject: big\r\n\r\n"),
		Size:   1 << 40,
		Body: func() (io.ReadCloser, error) {
			return io.NopCloser(&countingReader{n: &read}), nil
		},
	}
	acts, err := s.Execute(context.Background(), msg, Envelope{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 1 || acts[0].Kind != Keep {
		t.Errorf("actions = %+v", acts)
	}
	if read > maxBodyBytes+64<<10 {
		t.Errorf("read %d bytes of the body, want at most about %d", read, maxBodyBytes)
	}
}

// countingReader is an endless message of "x" lines.
type countingReader struct{ n *int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
		if i%76 == 75 {
			p[i] = '\n'
		}
	}
	*r.n += int64(len(p))
	return len(p), nil
}

func TestCanceled(t *testing.T) {
	s, err := Compile([]byte(`keep;`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Execute(ctx, testMessage([]byte(testMsg)), Envelope{}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Execute = %v, want context.Canceled", err)
	}
}

func TestCompareNumbers(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "1", 0}, {"01", "1", 0}, {"2", "10", -1}, {"10x", "9", 1},
		{"", "1", 1}, {"x", "y", 0}, {"123456789012345678901234567890", "99", 1},
		{"0", "", -1},
	}
	for _, tt := range tests {
		if got := compareNumbers(tt.a, tt.b); got != tt.want {
			t.Errorf("compareNumbers(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestMultilineText checks text: strings (RFC 5228 2.4.2): the comment
// after text:, dot-stuffing undone, and CRLF line ends whatever the
// script used.
func TestMultilineText(t *testing.T) {
	for _, nl := range []string{"\r\n", "\n"} {
		src := strings.ReplaceAll("require \"variables\";\nset \"t\" text: # comment\nfirst\n..second\n.third\n.\n;\n", "\n", nl)
		s, err := Compile([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.cmds[0].value.s, "first\r\n.second\r\nthird\r\n"; got != want {
			t.Errorf("text: with %q = %q, want %q", nl, got, want)
		}
	}
}

func ExampleCompile() {
	s, err := Compile([]byte(`require ["fileinto", "imap4flags"];
if header :contains "subject" "[list]" {
	fileinto :flags "\\Seen" "Lists";
}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	msg := Message{Header: []byte("Subject: news from [list]\r\n\r\n"), Size: 100}
	acts, err := s.Execute(context.Background(), msg, Envelope{}, nil)
	fmt.Println(acts[0].Kind == FileInto, acts[0].Mailbox, acts[0].Flags, err)
	// Output: true Lists [\Seen] <nil>
}

// TestHostilePatterns runs patterns that make backtracking matchers
// exponential or quadratic against a large header value: each run ends,
// matching or failing with errTooMuchWork, never hanging.
func TestHostilePatterns(t *testing.T) {
	value := strings.Repeat("a", 900<<10)
	tests := []struct {
		name, test string
		tooMuch    bool
	}{
		{"stars", `header :matches "subject" "` + strings.Repeat("*a", 1000) + `b"`, false},
		{"long tail", `header :matches "subject" "*` + strings.Repeat("a", 2000) + `b"`, true},
		{"nested regex", `header :regex "subject" "` + strings.Repeat("(a*)*", 50) + `b"`, true},
		{"question marks", `header :matches "subject" "` + strings.Repeat("?*", 500) + `b"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile([]byte(`require ["regex", "variables"]; if ` + tt.test + ` { discard; }`))
			if err != nil {
				t.Fatal(err)
			}
			msg := Message{Header: []byte("Subject: " + value + "\r\n\r\n")}
			acts, err := s.Execute(context.Background(), msg, Envelope{}, nil)
			if tt.tooMuch {
				if !errors.Is(err, errTooMuchWork) {
					t.Errorf("Execute = %v, want errTooMuchWork", err)
				}
				return
			}
			if err != nil || len(acts) != 1 || acts[0].Kind != Keep {
				t.Errorf("Execute = %+v, %v; want a keep", acts, err)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pat, v string
		ok     bool
		caps   []string
	}{
		{"*", "", true, []string{""}},
		{"a*c", "abbc", true, []string{"bb"}},
		{"*.*", "a.b.c", true, []string{"a", "b.c"}},
		{"*-*-*", "a-b-c-d", true, []string{"a", "b", "c-d"}},
		{"?", "é", true, []string{"é"}},
		{"??", "é", false, nil},
		{"a\\*", "a*", true, nil},
		{"a\\*", "ab", false, nil},
		{"*x", "abc", false, nil},
		{"*b*", "abcabc", true, []string{"a", "cabc"}},
		{"", "", true, nil},
		{"", "a", false, nil},
	}
	for _, tt := range tests {
		toks, err := parseGlob(tt.pat, cmpCasemap)
		if err != nil {
			t.Fatal(err)
		}
		caps := make([]int, 2*countWildcards(toks))
		ok, _, err := glob(toks, tt.v, caps, maxWork)
		if err != nil || ok != tt.ok {
			t.Errorf("glob(%q, %q) = %v, %v; want %v", tt.pat, tt.v, ok, err, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		for i, want := range tt.caps {
			if got := tt.v[caps[2*i]:caps[2*i+1]]; got != want {
				t.Errorf("glob(%q, %q): wildcard %d = %q, want %q", tt.pat, tt.v, i+1, got, want)
			}
		}
	}
}

// BenchmarkExecute runs the Roundcube-style script on a small message,
// the common case at delivery.
func BenchmarkExecute(b *testing.B) {
	src, err := os.ReadFile("testdata/diff/roundcube-rules.sieve")
	if err != nil {
		b.Fatal(err)
	}
	raw, err := os.ReadFile("testdata/diff/plain.eml")
	if err != nil {
		b.Fatal(err)
	}
	s, err := Compile(src)
	if err != nil {
		b.Fatal(err)
	}
	msg := testMessage(raw)
	env := Envelope{From: "alice@example.org", To: "bob+shopping@example.net"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Execute(context.Background(), msg, env, inboxOnly{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentExecute runs one compiled script from many goroutines, as
// delivery does for an account's mail (run it with -race).
func TestConcurrentExecute(t *testing.T) {
	src, err := os.ReadFile("testdata/diff/roundcube-rules.sieve")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	env := Envelope{From: "alice@example.org", To: "bob+lists@example.net"}
	want, err := s.Execute(context.Background(), testMessage([]byte(testMsg)), env, inboxOnly{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 20 {
				got, err := s.Execute(context.Background(), testMessage([]byte(testMsg)), env, inboxOnly{})
				if err == nil && fmt.Sprint(got) != fmt.Sprint(want) {
					err = fmt.Errorf("actions %+v, want %+v", got, want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestLongFoldedHeader: a header field folded over a quarter of a million
// lines is unfolded in one pass, not recopied at each line (which took
// 26 s for 1 MB): a header test on it allocates a bounded number of
// times, not once per line.
func TestLongFoldedHeader(t *testing.T) {
	header := "Subject: a\r\n" + strings.Repeat(" x\r\n", 256<<10) + "\r\n"
	s, err := Compile([]byte(`require "fileinto"; if header :is "subject" "b" { fileinto "A"; }`))
	if err != nil {
		t.Fatal(err)
	}
	msg := Message{Header: []byte(header), Size: int64(len(header))}
	var acts []Action
	allocs := testing.AllocsPerRun(1, func() {
		if acts, err = s.Execute(context.Background(), msg, Envelope{}, nil); err != nil {
			t.Fatal(err)
		}
	})
	if len(acts) != 1 || acts[0].Kind != Keep {
		t.Errorf("actions = %+v, want a keep", acts)
	}
	if allocs > 100 {
		t.Errorf("%v allocations for one header test, want a few, not one per folded line", allocs)
	}
}

// TestReferencesLinear: strings with many "${" are read in linear time by
// both readers of references, the encoded characters at compile time and
// the variables at run time (1 MiB of "${" took 12.5 s to compile when
// each "${" looked for its "}" to the end of the string).
func TestReferencesLinear(t *testing.T) {
	const n = 64 << 10
	lookup := func(name string) (string, bool, error) {
		return "", isIdentifier(name), nil
	}
	for _, s := range []string{
		strings.Repeat("${", n),
		strings.Repeat("${", n) + "}",
		strings.Repeat("${hex:", n) + "}",
		strings.Repeat("${hex:41 ", n) + "}",
		strings.Repeat("${unicode:", n) + "41}",
		strings.Repeat("${a", n) + "}",
		strings.Repeat("${1", n) + "}",
	} {
		for name, f := range map[string]func(string) (string, bool, error){"decode": decodeRef, "variables": lookup} {
			given := 0
			_, read, err := replaceRefs(s, len(s), func(inner string) (string, bool, error) {
				given += len(inner)
				return f(inner)
			})
			if err != nil {
				t.Fatalf("%s %.12q...: %v", name, s, err)
			}
			if read > 2*len(s) || given > len(s) {
				t.Errorf("%s %.12q... (%d bytes): searched %d bytes and gave %d to read, want at most twice and once the string",
					name, s, len(s), read, given)
			}
		}
	}
	// And through Compile, with the largest script it takes.
	src := `require "encoded-character"; if header :is "x" "` + strings.Repeat("${", (MaxScriptSize-100)/2) + `" { keep; }`
	if _, err := Compile([]byte(src)); err != nil {
		t.Fatal(err)
	}
}

// TestAddFlagsBounded: adding flags reads each once, however many there
// are (a 49 KB script of addflag took 17.6 s per delivery, each flag being
// compared with every other), stops the list at maxVariableSize, and
// charges what it reads to the run's budget, so that a script adding
// large lists again and again fails with errTooMuchWork.
func TestAddFlagsBounded(t *testing.T) {
	var add []string
	n := 0
	for i := range 20000 {
		add = append(add, fmt.Sprintf("f%d F%d", i, i))
		n += len(add[i])
	}
	r := &run{ctx: context.Background()}
	got, err := r.addFlags("", add)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > maxVariableSize {
		t.Errorf("the list grew to %d bytes, past %d", len(got), maxVariableSize)
	}
	if fs := strings.Fields(got); len(fs) < 500 || fs[0] != "f0" || fs[1] != "f1" {
		t.Errorf("the list holds %d flags, starting %q; want f0 f1 ... up to the limit", len(fs), fs[:min(len(fs), 2)])
	}
	if r.work != int64(n) {
		t.Errorf("charged %d, want the %d bytes read", r.work, n)
	}

	flag := strings.Repeat("x", 90)
	var f strings.Builder
	for i := range 40 {
		fmt.Fprintf(&f, "%s%d ", flag, i)
	}
	src := `require ["imap4flags", "variables"]; set "f" "` + f.String() + `";` +
		strings.Repeat(`addflag "`+strings.Repeat("${f}", 15)+`"; removeflag "${f}";`, 1500)
	s, err := Compile([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Execute(context.Background(), testMessage([]byte(testMsg)), Envelope{}, nil); !errors.Is(err, errTooMuchWork) {
		t.Errorf("Execute = %v, want errTooMuchWork", err)
	}
}

// TestRegexCost: a :regex key costs what its program does, not its length
// ("[a-z]{1000}" is 11 bytes but a thousand steps per byte matched), and
// programs too large for one key, or for a script, are refused at compile
// time.
func TestRegexCost(t *testing.T) {
	s, err := Compile([]byte(`require "regex"; if header :regex "subject" "[a-z]{1000}" { discard; }`))
	if err != nil {
		t.Fatal(err)
	}
	header := "Subject: " + strings.Repeat("a1", 50<<10) + "\r\n\r\n"
	if _, err := s.Execute(context.Background(), Message{Header: []byte(header)}, Envelope{}, nil); !errors.Is(err, errTooMuchWork) {
		t.Errorf("Execute = %v, want errTooMuchWork", err)
	}

	big := strings.Repeat("(?:x{1000})", 17)
	for _, tt := range []struct{ name, script, msg string }{
		{"one key", `require "regex"; if header :regex "subject" "` + big + `" { discard; }`, "too large"},
		{"one key with variables", `require ["regex", "variables"]; set "a" "1000"; if header :regex "subject" "${a}` + big + `" { discard; }`, ""},
		{"the script", `require "regex";` + strings.Repeat(`if header :regex "subject" "[a-z]{1000}[0-9]{1000}[a-z]{1000}" { discard; }`, 100), "regular expressions are too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Compile([]byte(tt.script))
			if tt.msg != "" {
				if err == nil || !strings.Contains(err.Error(), tt.msg) {
					t.Errorf("Compile = %v, want an error with %q", err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// At run time the key is refused and the message kept.
			if _, err := s.Execute(context.Background(), testMessage([]byte(testMsg)), Envelope{}, nil); err == nil || !strings.Contains(err.Error(), "too large") {
				t.Errorf("Execute = %v, want a key too large", err)
			}
		})
	}
}

// TestLongHeaderCanceled: reading a long header heeds the run's context
// between fields.
func TestLongHeaderCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := &run{ctx: ctx, msg: Message{Header: []byte(strings.Repeat("X-A: b\r\n", 5000) + "\r\n")}}
	if _, err := r.header("x-a", 0, false); !errors.Is(err, context.Canceled) {
		t.Errorf("header = %v, want context.Canceled", err)
	}
}
