package message

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// dumpTree writes a Part tree in the form the golden files hold: one line
// per part with its section number, offsets and content fields, and the
// envelope of each message.
func dumpTree(p *Part) string {
	var b strings.Builder
	dumpPart(&b, p, "", 0)
	return b.String()
}

func dumpPart(b *strings.Builder, p *Part, section string, depth int) {
	indent := strings.Repeat("  ", depth)
	name := section
	if name == "" {
		name = "root"
	}
	fmt.Fprintf(b, "%s%s [%d %d %d) lines=%d %s/%s", indent, name, p.HeaderStart, p.BodyStart, p.End, p.Lines, p.MediaType, p.MediaSubtype)
	fmt.Fprintf(b, "%s enc=%s", dumpParams(p.Params), p.Encoding)
	for _, f := range []struct{ k, v string }{
		{"id", p.ID}, {"desc", p.Description}, {"loc", p.Location}, {"md5", p.MD5},
	} {
		if f.v != "" {
			fmt.Fprintf(b, " %s=%q", f.k, f.v)
		}
	}
	if p.Disposition != "" || p.DispositionParams != nil {
		fmt.Fprintf(b, " disp=%s%s", p.Disposition, dumpParams(p.DispositionParams))
	}
	if p.Language != nil {
		fmt.Fprintf(b, " lang=%q", p.Language)
	}
	b.WriteByte('\n')
	if e := p.Envelope; e != nil {
		fmt.Fprintf(b, "%s  date=%q subject=%q in-reply-to=%q message-id=%q", indent, e.Date, e.Subject, e.InReplyTo, e.MessageID)
		if e.Empty != 0 {
			fmt.Fprintf(b, " empty=%04b", e.Empty)
		}
		b.WriteByte('\n')
		for _, l := range []struct {
			k    string
			list []Address
		}{{"from", e.From}, {"sender", e.Sender}, {"reply-to", e.ReplyTo}, {"to", e.To}, {"cc", e.Cc}, {"bcc", e.Bcc}} {
			if l.list != nil {
				fmt.Fprintf(b, "%s  %s: %s\n", indent, l.k, dumpAddresses(l.list))
			}
		}
	}
	for i := range p.Parts {
		child := fmt.Sprint(i + 1)
		if section != "" {
			child = section + "." + child
		}
		if isMessageType(p) {
			child = name + ".msg"
		}
		dumpPart(b, &p.Parts[i], child, depth+1)
	}
}

func dumpParams(ps []Param) string {
	if ps == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(" (")
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%q %q", p.Name, p.Value)
	}
	b.WriteByte(')')
	return b.String()
}

func dumpAddresses(list []Address) string {
	var parts []string
	for _, a := range list {
		switch {
		case a.GroupStart:
			parts = append(parts, fmt.Sprintf("group(%q)", a.Mailbox))
		case a.GroupEnd:
			parts = append(parts, "end-group")
		default:
			parts = append(parts, fmt.Sprintf("(%q %q %q %q)", a.Name, a.Adl, a.Mailbox, a.Host))
		}
	}
	return strings.Join(parts, " ")
}

// checkInvariants checks what must hold of any tree Parse makes of raw,
// and that the tree survives Marshal and Unmarshal.
func checkInvariants(t testing.TB, raw []byte, root *Part) {
	t.Helper()
	size := int64(len(raw))
	if root.HeaderStart != 0 || root.End != size {
		t.Errorf("root spans [%d, %d), want [0, %d)", root.HeaderStart, root.End, size)
	}
	if root.Envelope == nil {
		t.Errorf("root has no envelope")
	}
	checkPart(t, raw, root, "root")

	enc := Marshal(root)
	back, err := Unmarshal(enc)
	if err != nil {
		t.Fatalf("Unmarshal(Marshal(tree)): %v", err)
	}
	if !reflect.DeepEqual(root, back) {
		t.Errorf("Marshal/Unmarshal round trip differs:\n%s\nwant\n%s", dumpTree(back), dumpTree(root))
	}
	if again := Marshal(back); !bytes.Equal(again, enc) {
		t.Errorf("Marshal(Unmarshal(b)) != b")
	}
}

func checkPart(t testing.TB, raw []byte, p *Part, name string) {
	t.Helper()
	if !(0 <= p.HeaderStart && p.HeaderStart <= p.BodyStart && p.BodyStart <= p.End && p.End <= int64(len(raw))) {
		t.Fatalf("%s: offsets [%d %d %d) not monotonic within %d bytes", name, p.HeaderStart, p.BodyStart, p.End, len(raw))
	}
	if got := int64(bytes.Count(raw[p.BodyStart:p.End], []byte{'\n'})); got != p.Lines {
		t.Errorf("%s: Lines = %d, body has %d LFs", name, p.Lines, got)
	}
	if p.MediaType == "" || p.MediaSubtype == "" || p.MediaType != asciiLower(p.MediaType) || p.MediaSubtype != asciiLower(p.MediaSubtype) {
		t.Errorf("%s: media type %q/%q not lower-case and non-empty", name, p.MediaType, p.MediaSubtype)
	}
	if p.Encoding == "" || p.Encoding != asciiUpper(p.Encoding) {
		t.Errorf("%s: encoding %q not upper-case and non-empty", name, p.Encoding)
	}
	for _, ps := range [][]Param{p.Params, p.DispositionParams} {
		for _, x := range ps {
			if x.Name != asciiLower(x.Name) {
				t.Errorf("%s: parameter name %q not lower-case", name, x.Name)
			}
		}
	}
	if e := p.Envelope; e != nil {
		for _, list := range [][]Address{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
			checkAddresses(t, name, list)
		}
		if len(e.From) > 0 && (len(e.Sender) == 0 || len(e.ReplyTo) == 0) {
			t.Errorf("%s: Sender or ReplyTo empty while From is not", name)
		}
	}
	switch {
	case p.MediaType == "multipart":
		if len(p.Parts) == 0 {
			t.Errorf("%s: multipart without parts", name)
		}
	case isMessageType(p):
		if len(p.Parts) != 1 {
			t.Fatalf("%s: message part with %d parts", name, len(p.Parts))
		}
		if p.Parts[0].HeaderStart != p.BodyStart || p.Parts[0].Envelope == nil {
			t.Errorf("%s: encapsulated message does not start the body or lacks an envelope", name)
		}
	default:
		if len(p.Parts) != 0 {
			t.Errorf("%s: leaf with %d parts", name, len(p.Parts))
		}
	}
	prevEnd := p.BodyStart
	for i := range p.Parts {
		c := &p.Parts[i]
		cname := fmt.Sprintf("%s.%d", name, i+1)
		if c.HeaderStart < prevEnd || c.End > p.End {
			t.Errorf("%s: [%d %d) not after %d within parent end %d", cname, c.HeaderStart, c.End, prevEnd, p.End)
		}
		if c.Envelope != nil && !isMessageType(p) {
			t.Errorf("%s: envelope on a body part", cname)
		}
		checkPart(t, raw, c, cname)
		prevEnd = c.End
	}
}

func checkAddresses(t testing.TB, name string, list []Address) {
	t.Helper()
	depth := 0
	for _, a := range list {
		switch {
		case a.GroupStart:
			depth++
		case a.GroupEnd:
			depth--
			if a != (Address{GroupEnd: true}) {
				t.Errorf("%s: group end with fields: %+v", name, a)
			}
		default:
			if a.Mailbox == "" || a.Host == "" {
				t.Errorf("%s: address without mailbox or host: %+v", name, a)
			}
		}
		if depth < 0 || depth > 1 {
			t.Errorf("%s: unbalanced groups", name)
		}
	}
	if depth != 0 {
		t.Errorf("%s: unterminated group", name)
	}
}
