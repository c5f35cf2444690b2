package message

import "io"

// chunkSize is how much encoded input the decoding readers take at once.
const chunkSize = 4096

// base64Value returns the 6-bit value of a base64 character (RFC 2045
// 6.8, table 1).
func base64Value(c byte) (byte, bool) {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A', true
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26, true
	case '0' <= c && c <= '9':
		return c - '0' + 52, true
	case c == '+':
		return 62, true
	case c == '/':
		return 63, true
	}
	return 0, false
}

// base64Decoder decodes base64 tolerantly, as RFC 2045 6.8 asks ("all
// line breaks or other characters not found in Table 1 must be ignored by
// decoding software"). "=" ends the current quantum, not the data, so
// that concatenated base64 blocks decode too.
type base64Decoder struct {
	q [4]byte // the quantum being collected
	n int     // characters in q
}

// decode appends the decoding of in to out.
func (d *base64Decoder) decode(out, in []byte) []byte {
	for _, c := range in {
		v, ok := base64Value(c)
		if !ok {
			if c == '=' {
				out = d.flush(out)
			}
			continue
		}
		d.q[d.n] = v
		if d.n++; d.n == 4 {
			out = append(out, d.q[0]<<2|d.q[1]>>4, d.q[1]<<4|d.q[2]>>2, d.q[2]<<6|d.q[3])
			d.n = 0
		}
	}
	return out
}

// flush appends the octets of an incomplete quantum: two characters make
// one octet, three make two, and a lone one makes none.
func (d *base64Decoder) flush(out []byte) []byte {
	switch d.n {
	case 2:
		out = append(out, d.q[0]<<2|d.q[1]>>4)
	case 3:
		out = append(out, d.q[0]<<2|d.q[1]>>4, d.q[1]<<4|d.q[2]>>2)
	}
	d.n = 0
	return out
}

// base64Reader decodes a base64 stream.
type base64Reader struct {
	r   io.Reader
	dec base64Decoder
	in  []byte // input buffer
	buf []byte // output buffer, reused
	out []byte // decoded octets not yet read, within buf
	err error  // the error that ended the input
}

func (b *base64Reader) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		if b.in == nil {
			b.in = make([]byte, chunkSize)
		}
		n, err := b.r.Read(b.in)
		b.buf = b.dec.decode(b.buf[:0], b.in[:n])
		if err != nil {
			b.err = err
			b.buf = b.dec.flush(b.buf)
		}
		b.out = b.buf
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

// qpReader decodes a quoted-printable stream (RFC 2045 6.7), tolerantly:
// hexadecimal digits of either case are accepted, an "=" that starts
// neither an escape nor a soft line break is kept literally (note 2 of
// 6.7), and white space at the end of a line is removed (rule 3). LF
// line breaks are accepted as well as CRLF.
type qpReader struct {
	r     io.Reader
	in    []byte
	buf   []byte  // output buffer, reused
	out   []byte  // decoded octets not yet read, within buf
	held  []byte  // input whose meaning depends on what follows it
	state qpState // what held is
	err   error
}

type qpState int

const (
	qpText   qpState = iota // held: white space that may end the line
	qpCR                    // held: white space, then CR
	qpEq                    // held: "="
	qpEqHex                 // held: "=" and a hexadecimal digit
	qpEqWS                  // held: "=" and white space, maybe a soft line break
	qpEqWSCR                // held: "=", white space, CR
)

// maxHeld bounds held white space: beyond it, white space is output as it
// is, whether or not it ends its line.
const maxHeld = 1024

func (q *qpReader) Read(p []byte) (int, error) {
	for len(q.out) == 0 {
		if q.err != nil {
			return 0, q.err
		}
		if q.in == nil {
			q.in = make([]byte, chunkSize)
		}
		n, err := q.r.Read(q.in)
		q.out = q.buf[:0]
		for _, c := range q.in[:n] {
			q.step(c)
		}
		if err != nil {
			q.err = err
			q.end()
		}
		q.buf = q.out
	}
	n := copy(p, q.out)
	q.out = q.out[n:]
	return n, nil
}

// step consumes one input octet.
func (q *qpReader) step(c byte) {
	switch q.state {
	case qpText:
		switch c {
		case ' ', '\t':
			if len(q.held) >= maxHeld {
				q.release()
			}
			q.held = append(q.held, c)
		case '\r':
			q.hold(qpCR, c)
		case '\n': // the white space before it is padding (rule 3)
			q.held = q.held[:0]
			q.out = append(q.out, '\n')
		case '=':
			q.release()
			q.hold(qpEq, c)
		default:
			q.release()
			q.out = append(q.out, c)
		}
	case qpCR:
		if c == '\n' {
			q.held = q.held[:0]
			q.state = qpText
			q.out = append(q.out, '\r', '\n')
			return
		}
		q.reject(c)
	case qpEq:
		switch {
		case isHex(c):
			q.hold(qpEqHex, c)
		case c == ' ' || c == '\t':
			q.hold(qpEqWS, c)
		case c == '\r':
			q.hold(qpEqWSCR, c)
		case c == '\n':
			q.softBreak()
		default:
			q.reject(c)
		}
	case qpEqHex:
		if b, ok := unhex2(q.held[1], c); ok {
			q.held = q.held[:0]
			q.state = qpText
			q.out = append(q.out, b)
			return
		}
		q.reject(c)
	case qpEqWS:
		switch {
		case (c == ' ' || c == '\t') && len(q.held) < maxHeld:
			q.held = append(q.held, c)
		case c == '\r':
			q.hold(qpEqWSCR, c)
		case c == '\n':
			q.softBreak()
		default:
			q.reject(c)
		}
	case qpEqWSCR:
		if c == '\n' {
			q.softBreak()
			return
		}
		q.reject(c)
	}
}

// hold adds c to the held input, which now means s.
func (q *qpReader) hold(s qpState, c byte) {
	q.held = append(q.held, c)
	q.state = s
}

// release outputs the held input literally.
func (q *qpReader) release() {
	q.out = append(q.out, q.held...)
	q.held = q.held[:0]
	q.state = qpText
}

// reject outputs the held input literally, since c shows it meant nothing
// special, and then consumes c afresh.
func (q *qpReader) reject(c byte) {
	q.release()
	q.step(c)
}

// softBreak drops a soft line break, "=" at the end of a line (rule 5).
func (q *qpReader) softBreak() {
	q.held = q.held[:0]
	q.state = qpText
}

// end handles held input at the end of the data: trailing white space is
// dropped as at the end of a line, as is a final "=", which encoders write
// when the text does not end with a line break.
func (q *qpReader) end() {
	switch q.state {
	case qpText, qpEq, qpEqWS, qpEqWSCR:
		q.held = q.held[:0]
		q.state = qpText
	default:
		q.release()
	}
}

func isHex(c byte) bool {
	_, ok := unhex(c)
	return ok
}

// CanonicalText returns a reader of the text r carries with every line
// break in the canonical form of MIME text, CRLF (RFC 2046 4.1.1): a bare
// LF or a bare CR becomes CRLF, and CRLF stays as it is. Content that a
// sender encoded with base64 or quoted-printable without first putting it
// into canonical form comes out of DecodeTransfer with bare LFs; IMAP
// BINARY hands a text part over decoded, as its canonical form.
func CanonicalText(r io.Reader) io.Reader {
	return &crlfReader{r: r}
}

// crlfReader is CanonicalText's reader.
type crlfReader struct {
	r    io.Reader
	ends LineEnds
	in   []byte // input buffer
	out  []byte // converted octets not yet read, within in or ends' buffer
	err  error  // the error that ended the input
}

func (c *crlfReader) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.in == nil {
			c.in = make([]byte, chunkSize)
		}
		n, err := c.r.Read(c.in)
		c.out, c.err = c.ends.Convert(c.in[:n]), err
		if err != nil {
			c.out = append(c.out, c.ends.End()...)
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}
