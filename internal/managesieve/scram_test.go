package managesieve_test

import (
	"bufio"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSCRAM logs in with SCRAM-SHA-256 (RFC 7677) as RFC 5804 2.1 carries
// it: the client-first message as the initial response, the server-first
// as a string to answer with a string, the server-final in the OK's SASL
// response code, whose signature the client checks. It runs from a
// remote address without TLS, where SCRAM is the one mechanism offered.
func TestSCRAM(t *testing.T) {
	t.Parallel()
	e := start(t, options{remote: "192.0.2.10"})
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute)) // a hang guard, not an assertion
	r := bufio.NewReader(conn)
	line := func() string {
		t.Helper()
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return strings.TrimSuffix(l, "\r\n")
	}
	for l := line(); !strings.HasPrefix(l, "OK"); l = line() {
		if strings.HasPrefix(l, `"SASL"`) && l != `"SASL" "SCRAM-SHA-256"` {
			t.Errorf("before TLS from afar: %s", l)
		}
	}
	b64 := base64.StdEncoding.EncodeToString
	const nonce = "rOprNGfwEbeRWgbNEkqO"
	clientFirstBare := "n=" + alice + ",r=" + nonce
	fmt.Fprintf(conn, "AUTHENTICATE \"SCRAM-SHA-256\" \"%s\"\r\n", b64([]byte("n,,"+clientFirstBare)))
	challenge := line()
	serverFirst, err := base64.StdEncoding.DecodeString(strings.Trim(challenge, `"`))
	if err != nil {
		t.Fatalf("challenge %q: %v", challenge, err)
	}
	attrs := map[string]string{}
	for a := range strings.SplitSeq(string(serverFirst), ",") {
		attrs[a[:1]] = a[2:]
	}
	salt, _ := base64.StdEncoding.DecodeString(attrs["s"])
	iter, _ := strconv.Atoi(attrs["i"])
	if !strings.HasPrefix(attrs["r"], nonce) || len(salt) == 0 || iter < 4096 {
		t.Fatalf("server-first %q", serverFirst)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	withoutProof := "c=" + b64([]byte("n,,")) + ",r=" + attrs["r"]
	authMessage := clientFirstBare + "," + string(serverFirst) + "," + withoutProof
	sig := mac(storedKey[:], authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	fmt.Fprintf(conn, "\"%s\"\r\n", b64([]byte(withoutProof+",p="+b64(proof))))
	ok := line()
	want := `OK (SASL "` + b64([]byte("v="+b64(mac(mac(salted, "Server Key"), authMessage)))) + `") "logged in"`
	if ok != want {
		t.Fatalf("after the proof: %q, want %q", ok, want)
	}
	fmt.Fprintf(conn, "LISTSCRIPTS\r\n")
	if l := line(); l != `OK "listscripts completed"` {
		t.Errorf("LISTSCRIPTS after SCRAM: %q", l)
	}
}
