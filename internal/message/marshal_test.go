package message

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fullTree sets every field the encoding holds.
func fullTree() *Part {
	from := []Address{{Name: "Ann", Mailbox: "ann", Host: "example.org"}}
	return &Part{
		HeaderStart: 0, BodyStart: 100, End: 1000, Lines: 20,
		MediaType: "multipart", MediaSubtype: "mixed",
		Params:   []Param{{Name: "boundary", Value: "b"}},
		Encoding: "7BIT",
		Envelope: &Envelope{
			Date: "Tue, 3 Mar 2026 10:00:00 +0100", Subject: "Subject",
			From:      from,
			Sender:    []Address{{Adl: "@relay", Mailbox: "s", Host: "example.org"}},
			ReplyTo:   from,
			To:        []Address{{Mailbox: "Friends", GroupStart: true}, {Mailbox: "a", Host: "b"}, {GroupEnd: true}},
			Cc:        []Address{{Mailbox: "c", Host: "d"}},
			Bcc:       []Address{{Mailbox: "e", Host: "f"}},
			InReplyTo: "<x@y>", MessageID: "<m@y>",
		},
		Parts: []Part{{
			HeaderStart: 110, BodyStart: 150, End: 400, Lines: 5,
			MediaType: "application", MediaSubtype: "pdf",
			Params:            []Param{{Name: "name", Value: "€.pdf"}},
			ID:                "<id@x>",
			Description:       "desc",
			Encoding:          "BASE64",
			Disposition:       "attachment",
			DispositionParams: []Param{{Name: "filename", Value: "€.pdf"}, {Name: "size", Value: "3"}},
			Language:          []string{"en", "fr"},
			Location:          "http://x/",
			MD5:               "md5",
		}, {
			HeaderStart: 420, BodyStart: 460, End: 990, Lines: 9,
			MediaType: "message", MediaSubtype: "rfc822", Encoding: "7BIT",
			Parts: []Part{{
				HeaderStart: 460, BodyStart: 500, End: 990, Lines: 7,
				MediaType: "text", MediaSubtype: "plain", Encoding: "8BIT",
				Envelope: &Envelope{Subject: "inner"},
			}},
		}},
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	trees := []*Part{fullTree(), {MediaType: "text", MediaSubtype: "plain", Encoding: "7BIT", Envelope: &Envelope{}}}
	files, _ := filepath.Glob("testdata/*.eml")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		root, err := Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		trees = append(trees, root)
	}
	for _, tree := range trees {
		b := Marshal(tree)
		back, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("Unmarshal: %v\n%s", err, dumpTree(tree))
		}
		if !reflect.DeepEqual(tree, back) {
			t.Errorf("round trip differs:\n%s\nwant\n%s", dumpTree(back), dumpTree(tree))
		}
	}
}

// withEmpty is fullTree with the encapsulated message's envelope saying
// that fields are empty.
func withEmpty(f EmptyFields) *Part {
	tree := fullTree()
	tree.Parts[1].Parts[0].Envelope.Empty = f
	return tree
}

// TestMarshalFormat pins the versions of the encoding: stored structures
// must stay readable. A change to the format needs a new version.
// Marshal writes version 1, which older buzons read too, for a tree that
// version 2 adds nothing to: no envelope with a field present but empty.
func TestMarshalFormat(t *testing.T) {
	const v1 = "0104040702020064840714096d756c746970617274056d697865640108626f75" +
		"6e646172790162000004374249540000000000011e5475652c2033204d617220" +
		"323032362031303a30303a3030202b30313030075375626a656374010003416e" +
		"6e0003616e6e0b6578616d706c652e6f7267020000064072656c617901730b65" +
		"78616d706c652e6f7267000301000007467269656e6473000000000161016202" +
		"0000000001000000016301640100000001650166053c7840793e053c6d40793e" +
		"026e28fa01050b6170706c69636174696f6e0370646601046e616d6507e282ac" +
		"2e706466063c696440783e0464657363064241534536340a6174746163686d65" +
		"6e74020866696c656e616d6507e282ac2e7064660473697a6501330202656e02" +
		"667209687474703a2f2f782f036d64350000a40328920409076d657373616765" +
		"06726663383232000000043742495400000000000001cc0328ea030704746578" +
		"7405706c61696e00000004384249540000000000010005696e6e657200000000" +
		"0000000000"
	// Version 2 adds an octet before each envelope's date: here 00 for
	// the message's, and 09 (Date and Message-ID present but empty) for
	// the one encapsulated.
	const v2 = "0204040702020064840714096d756c746970617274056d697865640108626f75" +
		"6e64617279016200000437424954000000000001001e5475652c2033204d6172" +
		"20323032362031303a30303a3030202b30313030075375626a65637401000341" +
		"6e6e0003616e6e0b6578616d706c652e6f7267020000064072656c617901730b" +
		"6578616d706c652e6f7267000301000007467269656e64730000000001610162" +
		"020000000001000000016301640100000001650166053c7840793e053c6d4079" +
		"3e026e28fa01050b6170706c69636174696f6e0370646601046e616d6507e282" +
		"ac2e706466063c696440783e0464657363064241534536340a6174746163686d" +
		"656e74020866696c656e616d6507e282ac2e7064660473697a6501330202656e" +
		"02667209687474703a2f2f782f036d64350000a40328920409076d6573736167" +
		"6506726663383232000000043742495400000000000001cc0328ea0307047465" +
		"787405706c61696e0000000438424954000000000001090005696e6e65720000" +
		"00000000000000"
	for _, tc := range []struct {
		name string
		hex  string
		tree *Part
	}{{"version 1", v1, fullTree()}, {"version 2", v2, withEmpty(EmptyDate | EmptyMessageID)}} {
		want, err := hex.DecodeString(tc.hex)
		if err != nil {
			t.Fatal(err)
		}
		if got := Marshal(tc.tree); !bytes.Equal(got, want) {
			t.Errorf("%s: encoding changed; bump formatVersion and keep reading the old ones.\ngot  %x\nwant %x", tc.name, got, want)
		}
		back, err := Unmarshal(want)
		if err != nil || !reflect.DeepEqual(back, tc.tree) {
			t.Errorf("%s no longer decodes to the same tree: %v", tc.name, err)
		}
	}
}

// TestUnmarshalVersion1Empty: a structure stored by a buzon from before
// version 2 has no Envelope.Empty, and reads as if every empty field
// were absent, which is what that buzon served.
func TestUnmarshalVersion1Empty(t *testing.T) {
	raw, err := os.ReadFile("testdata/empty-fields.eml")
	if err != nil {
		t.Fatal(err)
	}
	root, err := Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if root.Envelope.Empty != allEmptyFields || root.Parts[1].Parts[0].Envelope.Empty != EmptySubject {
		t.Fatalf("Parse: empty fields %04b and %04b, want 1111 and 0010",
			root.Envelope.Empty, root.Parts[1].Parts[0].Envelope.Empty)
	}
	b := Marshal(root)
	if b[0] != 2 {
		t.Fatalf("written as version %d, want 2", b[0])
	}
	back, err := Unmarshal(b)
	if err != nil || !reflect.DeepEqual(back, root) {
		t.Fatalf("version 2 round trip: %v", err)
	}
	// The same tree as version 1 wrote it: the envelopes without their
	// empty octet.
	root.Envelope.Empty, root.Parts[1].Parts[0].Envelope.Empty = 0, 0
	v1 := Marshal(root)
	if v1[0] != 1 || len(v1) != len(b)-2 {
		t.Fatalf("without empty fields: version %d, %d bytes, want version 1 and %d bytes", v1[0], len(v1), len(b)-2)
	}
	old, err := Unmarshal(v1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(old, root) {
		t.Errorf("version 1 decodes to\n%s\nwant\n%s", dumpTree(old), dumpTree(root))
	}
}

// TestUnmarshalRejects checks that Unmarshal rejects what Marshal did not
// make, without panicking.
func TestUnmarshalRejects(t *testing.T) {
	valid := Marshal(withEmpty(EmptyDate)) // version 2
	uv := func(vs ...uint64) []byte {
		b := []byte{formatVersion}
		for _, v := range vs {
			b = binary.AppendUvarint(b, v)
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown version", append([]byte{3}, valid[1:]...)},
		{"bad empty fields", Marshal(withEmpty(0x10))},
		{"field said to be empty is not", Marshal(withEmpty(EmptySubject))},
		{"trailing byte", append(append([]byte{}, valid...), 0)},
		{"huge part count", uv(1<<60, 0, 0, 0, 0)},
		{"huge string", append(uv(1, 0, 0, 0, 0, 0, 0, 0, 0), binary.AppendUvarint(nil, 1<<62)...)},
		{"no parts", uv(0, 0, 0, 0, 0)},
		{"overlong varint", append([]byte{formatVersion}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"offset overflow", uv(1, 0, 0, 0, 0, 1<<63-1, 1, 0, 0)},
		{"more lines than bytes", uv(1, 0, 0, 0, 0, 0, 0, 1, 2)},
	}
	for _, tt := range tests {
		if _, err := Unmarshal(tt.in); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", tt.name, err)
		}
	}
	for n := range len(valid) {
		if _, err := Unmarshal(valid[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d bytes: err = %v, want ErrCorrupt", n, err)
		}
	}
	// Every single-byte corruption either fails or decodes to a tree that
	// survives another round trip.
	for i := 1; i < len(valid); i++ {
		for _, c := range []byte{0, 1, 0x7f, 0x80, 0xff} {
			b := append([]byte{}, valid...)
			b[i] = c
			if tree, err := Unmarshal(b); err == nil {
				if again, err := Unmarshal(Marshal(tree)); err != nil || !reflect.DeepEqual(again, tree) {
					t.Errorf("byte %d = %#x: decoded tree does not round-trip: %v", i, c, err)
				}
			}
		}
	}
}

// TestUnmarshalRejectsChildOutsideParent checks the structural checks
// the IMAP server relies on, to read sections by offset and to find the
// envelopes and encapsulated messages it writes.
func TestUnmarshalRejectsChildOutsideParent(t *testing.T) {
	for _, mutate := range []func(*Part){
		func(p *Part) { p.Parts[0].HeaderStart = 50 },                             // before the parent's body
		func(p *Part) { p.Parts[1].Parts[0].End = 2000 },                          // past the parent's end
		func(p *Part) { p.Parts[1].HeaderStart, p.Parts[1].BodyStart = 300, 300 }, // overlapping its sibling
		func(p *Part) { p.Envelope = nil },                                        // a message without envelope
		func(p *Part) { p.Parts[1].Parts[0].Envelope = nil },                      // likewise, encapsulated
		func(p *Part) { p.Parts[1].Parts[0].HeaderStart = 470 },                   // not where the body starts
		func(p *Part) { p.Parts[1].Parts = nil },                                  // a message part without its message
		func(p *Part) { p.Parts[1].Parts = append(p.Parts[1].Parts, p.Parts[1].Parts[0]) },
		func(p *Part) { p.Parts = nil },                         // a multipart without parts
		func(p *Part) { p.Parts[0].Parts = []Part{p.Parts[0]} }, // a leaf with parts
	} {
		tree := fullTree()
		mutate(tree)
		if _, err := Unmarshal(Marshal(tree)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("err = %v, want ErrCorrupt", err)
		}
	}
}

func TestUnmarshalAllocations(t *testing.T) {
	raw, err := os.ReadFile("testdata/nested-rfc822.eml")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := Parse(bytes.NewReader(raw))
	b := Marshal(root)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := Unmarshal(b); err != nil {
			t.Fatal(err)
		}
	})
	// The string, and one array each of Parts, Params, Addresses and
	// Envelopes (this message has no Content-Language).
	if allocs > 5 {
		t.Errorf("Unmarshal made %v allocations, want at most 5", allocs)
	}
}

// TestDecoder: a Decoder reused over messages of different shapes gives
// the trees Unmarshal gives, and, once its arrays are large enough,
// allocates nothing.
func TestDecoder(t *testing.T) {
	var blobs [][]byte
	for _, name := range []string{"nested-rfc822.eml", "simple.eml", "nested-rfc822.eml"} {
		raw, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		root, _ := Parse(bytes.NewReader(raw))
		blobs = append(blobs, Marshal(root))
	}
	blobs = append(blobs, Marshal(fullTree()))
	var dec Decoder
	for round := range 2 {
		for i, b := range blobs {
			want, err := Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := dec.Unmarshal(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round %d, message %d: the Decoder's tree differs from Unmarshal's", round, i)
			}
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, b := range blobs {
			if _, err := dec.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("a warmed-up Decoder made %v allocations", allocs)
	}
}

// TestUnmarshalRandom feeds random bytes after a valid header.
func TestUnmarshalRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		b := make([]byte, 1+r.IntN(200))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		b[0] = formatVersion
		if r.IntN(2) == 0 && len(b) > 6 {
			copy(b[1:], []byte{1, 0, 0, 0, 0})
		}
		Unmarshal(b) // must not panic
	}
}

func TestMarshalSenderAlias(t *testing.T) {
	tree := fullTree()
	tree.Envelope.Sender = tree.Envelope.From
	plain := Marshal(tree)
	tree.Envelope.Sender = append([]Address(nil), tree.Envelope.From...)
	if copied := Marshal(tree); !bytes.Equal(plain, copied) {
		t.Error("a Sender equal to From is not written as a reference to it")
	}
	if !strings.Contains(string(plain), "ann") || strings.Count(string(plain), "example.org") != 1 {
		t.Errorf("From written more than once: %q", plain)
	}
}
