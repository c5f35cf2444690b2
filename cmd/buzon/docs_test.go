package main

// Tests that what the documents tell a person to type runs: README.md's
// command lines, and the tests SECURITY.md names as proof of each promise.

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/buzon-mail/buzon/internal/config"
)

// codeLines returns the lines of a Markdown document's fenced code blocks,
// each with the heading of the section it is in.
func codeLines(t *testing.T, path string) []docLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []docLine
	section, inCode := "", false
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			inCode = !inCode
		case inCode:
			lines = append(lines, docLine{section, line})
		case strings.HasPrefix(line, "#"):
			section = strings.TrimSpace(strings.TrimLeft(line, "#"))
		}
	}
	return lines
}

type docLine struct{ section, text string }

// buzonCommand returns the buzon command line within a document's line
// ("bin/buzon user list  # comment", "argv=/usr/local/bin/buzon deliver
// ..."): the words after the binary, the comment left out.
func buzonCommand(line string) ([]string, bool) {
	i := strings.Index(line, "bin/buzon ")
	if i < 0 {
		return nil, false
	}
	cmd, _, _ := strings.Cut(line[i+len("bin/buzon "):], " #")
	words := strings.Fields(cmd)
	for _, c := range commands() {
		if len(words) > 0 && words[0] == c.name {
			return words, true
		}
	}
	return nil, false // "install bin/buzon /usr/local/bin/buzon"
}

// TestREADMEFlags: every flag a buzon command line in README.md uses, in
// a code block or in a sentence, is one that command's --help lists.
func TestREADMEFlags(t *testing.T) {
	t.Parallel()
	readme := filepath.Join("..", "..", "README.md")
	lines := codeLines(t, readme)
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("`([^`]*bin/buzon [^`]*)`").FindAllStringSubmatch(string(b), -1) {
		lines = append(lines, docLine{"", m[1]})
	}
	helps := map[string]string{}
	n := 0
	for _, l := range lines {
		words, ok := buzonCommand(l.text)
		if !ok {
			continue
		}
		n++
		cmd := words[0]
		if _, ok := helps[cmd]; !ok {
			_, help, _ := buzon(t, "", cmd, "--help")
			helps[cmd] = help
		}
		for _, w := range words[1:] {
			if !strings.HasPrefix(w, "-") {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
			if !strings.Contains(helps[cmd], "  -"+name+" ") && !strings.Contains(helps[cmd], "  -"+name+"\n") {
				t.Errorf("README: %q: buzon %s has no flag -%s:\n%s", l.text, cmd, name, helps[cmd])
			}
		}
	}
	if n < 10 {
		t.Fatalf("found only %d buzon command lines in README.md", n)
	}
}

// TestREADMEUsingIt runs the command lines of README.md's "Using it"
// section as a person would, in order, with a shell, in a folder of its
// own where bin/buzon is the binary under test. The server they end with
// is started with its ports moved to free ones, and stopped.
func TestREADMEUsingIt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(buzonBin, filepath.Join(dir, "bin", "buzon")); err != nil {
		t.Fatal(err)
	}
	msg := "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: hello\r\n\r\nHi\r\n"
	if err := os.WriteFile(filepath.Join(dir, "message.eml"), []byte(msg), 0o600); err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, l := range codeLines(t, filepath.Join("..", "..", "README.md")) {
		if l.section != "Using it" || !strings.HasPrefix(l.text, "bin/buzon ") {
			continue
		}
		words, _ := buzonCommand(l.text)
		ran++
		if words[0] == "serve" {
			readmeServe(t, dir, l.text)
			continue
		}
		cmd := exec.Command("sh", "-c", l.text)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+dir)
		cmd.Stdin = strings.NewReader("a-password\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("README: %s: %v\n%s", l.text, err, out)
		}
	}
	if ran < 5 {
		t.Fatalf("ran only %d command lines of README.md's \"Using it\"", ran)
	}
}

// hostPortRE matches a listen address in a command line or config file.
var hostPortRE = regexp.MustCompile(`[0-9a-z.]*[0-9a-z]:[0-9]+\b`)

// readmeServe runs README's serve line in dir with every listen address,
// on its command line and in its config file, on a free loopback port:
// it must start, and stop cleanly on SIGTERM.
func readmeServe(t *testing.T, dir, line string) {
	t.Helper()
	if cfg := filepath.Join(dir, "buzon.toml"); strings.Contains(line, "buzon.toml") {
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatalf("README: %s: %v", line, err)
		}
		b = regexp.MustCompile(`"127\.0\.0\.1:[0-9]+"`).ReplaceAll(b, []byte(`"127.0.0.1:0"`))
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	line, _, _ = strings.Cut(line, " #")
	cmd := exec.Command("sh", "-c", "exec "+hostPortRE.ReplaceAllString(line, "127.0.0.1:0"))
	cmd.Dir = dir
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The log is read to its end, so the server never blocks on it.
	started := make(chan bool, 1)
	var seen bytes.Buffer
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if seen.Len() < 1<<16 {
				seen.WriteString(sc.Text() + "\n")
			}
			if strings.Contains(sc.Text(), `msg="buzon started"`) {
				started <- true
			}
		}
		started <- false
	}()
	select {
	case ok := <-started:
		if !ok {
			cmd.Wait()
			t.Fatalf("README: %s: exited before it started:\n%s", line, seen.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("README: %s: did not start", line)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	<-started // the log's end
	if err := cmd.Wait(); err != nil {
		t.Errorf("README: %s: after SIGTERM: %v", line, err)
	}
}

// TestSecurityProofs: every test SECURITY.md names as the proof of a
// promise exists where it says (a test named without a file is in
// cmd/buzon/limits_test.go; a subtest "TestX/Y" is looked for as Y in the
// file named, or is that file when it is Y's golden transcript, Y.txt),
// and its command line runs at least one test per name.
func TestSecurityProofs(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	b, err := os.ReadFile(filepath.Join(root, "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	nameRE := regexp.MustCompile("`((?:Test|Fuzz)[A-Za-z0-9_]+)(/[A-Za-z0-9_]+)?`")
	pathRE := regexp.MustCompile("`((?:cmd|internal)/[A-Za-z0-9_./]+)`")
	checked := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "| "), "|")
		for _, part := range strings.Split(cells[len(cells)-1], ";") {
			for _, m := range nameRE.FindAllStringSubmatchIndex(part, -1) {
				name, sub := part[m[2]:m[3]], ""
				if m[4] >= 0 {
					sub = part[m[4]+1 : m[5]]
				}
				var paths []string
				for _, p := range pathRE.FindAllStringSubmatch(part[m[1]:], -1) {
					paths = append(paths, p[1])
				}
				if len(paths) == 0 {
					paths = []string{"cmd/buzon/limits_test.go"}
				}
				want := "func " + name + "("
				if sub != "" {
					want = sub
				}
				if !anyFileContains(t, root, paths, want) && !isTranscript(root, paths, sub) {
					t.Errorf("SECURITY.md names %s, not found in %v", part[m[0]:m[1]], paths)
				}
				checked++
			}
		}
	}
	if checked < 50 {
		t.Fatalf("checked only %d tests named in SECURITY.md", checked)
	}
	// The command line that runs the tests written for SECURITY.md.
	run := regexp.MustCompile(`go test \./cmd/buzon -run '\^Test\(([^)]*)\)'`).FindSubmatch(b)
	if run == nil {
		t.Fatal("SECURITY.md: no go test command line")
	}
	for _, prefix := range strings.Split(string(run[1]), "|") {
		if !anyFileContains(t, root, []string{"cmd/buzon"}, "func Test"+prefix) {
			t.Errorf("SECURITY.md: go test -run '^Test(...|%s|...)' runs no test", prefix)
		}
	}
}

// isTranscript reports whether one of the files named is the golden
// transcript of subtest sub: sub.txt, which exists.
func isTranscript(root string, paths []string, sub string) bool {
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(root, p)); sub != "" && filepath.Base(p) == sub+".txt" && err == nil {
			return true
		}
	}
	return false
}

// anyFileContains reports whether one of the files named, or one of the Go
// files in the folders named, contains s.
func anyFileContains(t *testing.T, root string, paths []string, s string) bool {
	t.Helper()
	for _, p := range paths {
		files := []string{filepath.Join(root, p)}
		if fi, err := os.Stat(files[0]); err == nil && fi.IsDir() {
			files, _ = filepath.Glob(filepath.Join(root, p, "*.go"))
		}
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(s)) {
				return true
			}
		}
	}
	return false
}

// TestDocumentedDefaults: every setting the documents name exists, and a
// default that they state, in a table of limits ("| `limits.max_literal` |
// 1 MiB |") or in passing ("`auth.failure_delay` (500 ms)"), is the one
// config.Default has, so buzon config example prints the same.
func TestDocumentedDefaults(t *testing.T) {
	t.Parallel()
	defaults := map[string]any{}
	settingValues(defaults, "", reflect.ValueOf(config.Default()))
	rowRE := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| ([^|]+) \\|")
	inlineRE := regexp.MustCompile("`([a-z_.]+)` \\(([^)]+)\\)")
	valueRE := regexp.MustCompile(`^([0-9][0-9,.]*)\s*(ms|s|min|minutes|h|hours|KiB|MiB|GiB|bytes)?\b`)
	settingRE := regexp.MustCompile("`((?:listen|tls|store|auth|limits|imap|pop3|delivery|smtp|submission|sieve|autoconfig|log)\\.[a-z0-9_]+)`")
	checked := 0
	for _, doc := range []string{"README.md", "SECURITY.md", "ARCHITECTURE.md"} {
		b, err := os.ReadFile(filepath.Join("..", "..", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range settingRE.FindAllStringSubmatch(string(b), -1) {
			if _, ext, _ := strings.Cut(m[1], "."); strings.Contains(" lock db sock go pem toml json ", " "+ext+" ") {
				continue // a file: store.lock
			}
			if _, ok := defaults[m[1]]; !ok {
				t.Errorf("%s names a setting %s that buzon does not have", doc, m[1])
			}
		}
		for _, m := range append(rowRE.FindAllStringSubmatch(string(b), -1), inlineRE.FindAllStringSubmatch(string(b), -1)...) {
			key, text := m[1], strings.TrimSpace(m[2])
			def, ok := defaults[key]
			if !ok {
				continue
			}
			var stated any
			if text == "one per CPU" {
				stated = int64(0) // 0 means one per CPU
			} else if v := valueRE.FindStringSubmatch(text); v != nil {
				n, err := strconv.ParseFloat(strings.ReplaceAll(v[1], ",", ""), 64)
				if err != nil {
					t.Fatalf("%s: %s: %q: %v", doc, key, text, err)
				}
				if unit, ok := durationUnits[v[2]]; ok {
					stated = time.Duration(n * float64(unit))
				} else {
					stated = int64(n * sizeUnits[v[2]])
				}
			} else {
				continue // not a value ("at most 2 minutes")
			}
			if stated != def {
				t.Errorf("%s says %s defaults to %q; it is %v", doc, key, text, def)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d documented defaults", checked)
	}
}

// The units documents state defaults in.
var (
	durationUnits = map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "min": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hours": time.Hour}
	sizeUnits = map[string]float64{"": 1, "bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
)

// settingValues maps each setting of a config struct, by its TOML key
// ("limits.max_literal"), to its value: an int64, a time.Duration, or
// what else the field holds.
func settingValues(out map[string]any, prefix string, v reflect.Value) {
	for i := range v.NumField() {
		key, fv := prefix+v.Type().Field(i).Tag.Get("toml"), v.Field(i)
		switch {
		case fv.Type() == reflect.TypeOf(config.Duration(0)):
			out[key] = fv.Interface().(config.Duration).D()
		case fv.Kind() == reflect.Struct:
			settingValues(out, key+".", fv)
		case fv.CanInt():
			out[key] = fv.Int()
		case fv.CanUint():
			out[key] = int64(fv.Uint())
		case fv.CanFloat():
			out[key] = int64(fv.Float())
		default:
			out[key] = fv.Interface()
		}
	}
}
