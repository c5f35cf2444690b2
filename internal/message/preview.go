package message

import (
	"bufio"
	"errors"
	"html"
	"io"
	"unicode"
	"unicode/utf8"
)

// Message previews (RFC 8970): a line of a message's text for a client to
// show under its subject without downloading the body.

// PreviewChars is the most characters (Unicode code points) a preview
// holds: RFC 8970 3.3 has a server keep to 200 and never pass 256.
const PreviewChars = 200

const (
	// previewRead bounds the raw bytes read of a message's parts, all
	// those tried together. Plain text fills a preview within its first
	// kilobyte or two; the bound is for HTML, where a newsletter's <head>
	// and <style> may come to tens of kilobytes before the first word a
	// reader sees.
	previewRead = 64 << 10
	// previewParts bounds the parts tried when the first ones hold no
	// text (an empty text/plain beside the HTML that has it, say).
	previewParts = 4
)

// Preview returns the preview text of the message whose tree p is,
// reading its bytes from msg (RFC 8970 3.3): the first text a reader sees,
// transfer-decoded and in UTF-8, HTML reduced to its text, runs of white
// space made one space, quoted lines (those beginning with ">", and the
// HTML within <blockquote>) left out, at most PreviewChars characters. A
// message without text has the preview "". Malformed content makes a
// preview of what can be read, never an error: the error is msg's.
//
// It reads at most a bounded prefix of at most a few parts, never the
// whole message.
func (p *Part) Preview(msg io.ReaderAt) (string, error) {
	pr := previewReader{msg: msg, budget: previewRead}
	for _, tp := range p.previewParts(nil) {
		s, err := pr.part(tp)
		if err != nil {
			return "", err
		}
		if s != "" || pr.budget == 0 {
			return s, nil
		}
	}
	return "", nil
}

// previewReader makes the preview of a message's parts, one after the
// other, within the bounds that the message has as a whole.
type previewReader struct {
	msg    io.ReaderAt
	budget int64 // raw bytes left to read, of previewRead
}

// previewParts appends to out the parts, in the order a preview tries
// them, that may hold the text a reader sees first: text/plain and
// text/html parts that are not attachments, the plain text of a
// multipart/alternative before its HTML.
func (p *Part) previewParts(out []*Part) []*Part {
	if len(out) >= previewParts || p.Disposition == "attachment" {
		return out
	}
	switch {
	case p.MediaType == "multipart":
		switch p.MediaSubtype {
		case "encrypted":
			return out // RFC 1847 2.2: the second part is ciphertext
		case "signed":
			if len(p.Parts) > 0 {
				return p.Parts[0].previewParts(out) // RFC 1847 2.1: then the signature
			}
			return out
		case "alternative":
			// RFC 2046 5.1.4: the alternatives come plainest first, but
			// a sender may put the HTML first; plain text is read
			// first either way, the others after, since a sender may
			// leave the plain one empty.
			var plain, other []*Part
			for i := range p.Parts {
				kid := p.Parts[i].previewParts(nil)
				if len(kid) > 0 && kid[0].MediaSubtype == "plain" {
					plain = append(plain, kid...)
				} else {
					other = append(other, kid...)
				}
			}
			for _, tp := range append(plain, other...) {
				if len(out) == previewParts {
					break
				}
				out = append(out, tp)
			}
			return out
		}
		for i := range p.Parts {
			out = p.Parts[i].previewParts(out)
		}
		return out
	case isMessageType(p) && len(p.Parts) == 1:
		return p.Parts[0].previewParts(out) // a forwarded message shown inline
	case p.MediaType == "text" && (p.MediaSubtype == "plain" || p.MediaSubtype == "html"):
		return append(out, p)
	}
	return out
}

// part makes the preview of the text part p.
func (pr *previewReader) part(p *Part) (string, error) {
	size := max(p.End-p.BodyStart, 0)
	cut := size > pr.budget // the read ends before the part does
	r := &firstErr{r: io.NewSectionReader(pr.msg, p.BodyStart, min(size, pr.budget))}
	defer func() { pr.budget -= r.n }()
	var b previewBuilder
	b.lineStart = true
	b.plain = p.MediaSubtype == "plain"
	var h htmlText
	h.b = &b
	in := bufio.NewReaderSize(p.TextReader(r), 4096)
	for !b.done {
		var c rune
		if skipTo := h.skipTo(&b); skipTo != 0 {
			_, err := in.ReadSlice(skipTo)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil {
				break
			}
			c = rune(skipTo)
		} else {
			var err error
			c, err = readPreviewRune(in, cut)
			if err != nil {
				break // the end, or content the decoders gave up on
			}
		}
		if b.plain {
			b.add(c)
		} else {
			h.feed(c)
		}
	}
	return string(b.out), r.err
}

// skipTo returns the byte up to which what is read next shows nothing and
// changes nothing, to be skipped at once rather than read a character at
// a time, or 0: often most of a newsletter's first kilobytes, the content
// of a <style> or <script> and the text of the <head> or of a <blockquote>
// (the quote above a reply), which only a "<" may end, comments,
// attribute values, the quoted lines of plain text.
func (h *htmlText) skipTo(b *previewBuilder) byte {
	switch {
	case b.plain:
		if b.quoted {
			return '\n'
		}
	case h.state == htmlRaw && h.match == 0:
		return '<'
	case h.state == htmlData && (h.head || h.quotes > 0):
		return '<'
	case h.state == htmlComment && h.dash == 0 && !h.opening:
		return '-'
	case h.state == htmlTag && h.quote != 0:
		return byte(h.quote)
	case h.state == htmlBogus:
		return '>'
	}
	return 0
}

// readPreviewRune reads one character of decoded text: a byte that is not
// part of a UTF-8 character is the one it stands for (StrayRune), as in
// raw header text. When the text was cut by the bound of what is read,
// the start of a character left incomplete by the cut ends it instead:
// those bytes are no characters of their own.
func readPreviewRune(in *bufio.Reader, cut bool) (rune, error) {
	c, size, err := in.ReadRune()
	if err != nil {
		return 0, err
	}
	if c == utf8.RuneError && size == 1 {
		if err := in.UnreadRune(); err != nil {
			return 0, err
		}
		if cut {
			if rest, err := in.Peek(utf8.UTFMax); err != nil && !utf8.FullRune(rest) {
				return 0, io.EOF
			}
		}
		b, err := in.ReadByte()
		return StrayRune(b), err
	}
	return c, nil
}

// firstErr keeps the first error of r but io.EOF: that of the message,
// which Preview returns, rather than one the decoders make of its content.
// It counts the bytes read too.
type firstErr struct {
	r   io.Reader
	err error
	n   int64
}

func (e *firstErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = err
	}
	return n, err
}

// previewBuilder collects the characters of a preview.
type previewBuilder struct {
	out       []byte
	n         int  // characters in out
	space     bool // white space seen since the last character kept
	lineStart bool // at the start of a line of plain text
	quoted    bool // within a quoted line of plain text
	plain     bool // the text is text/plain
	done      bool // out holds PreviewChars characters, or cannot take the next
	// joined is true right after a character kept: joiners that follow
	// it wait in pending for the next one.
	joined  bool
	pending []rune
}

// maxPending bounds the joiners kept between two characters: an emoji tag
// sequence's tags, say, which name a region in a few letters.
const maxPending = 16

// add takes one character of text.
func (b *previewBuilder) add(c rune) {
	lineStart := b.lineStart
	b.lineStart = c == '\n'
	switch {
	case b.done:
	case c == '\n':
		b.space, b.quoted = true, false
		b.joined, b.pending = false, b.pending[:0]
	case b.quoted:
	case c > ' ' && c < 0x7f && c != '>':
		b.keep(c) // printable ASCII, most text
	case blank(c):
		b.space, b.joined, b.pending = true, false, b.pending[:0]
	case joiner(c):
		b.join(c)
	case hidden(c):
		// Newsletters pad the text they mean for previews with
		// zero-width characters, to push what follows out of sight.
		b.joined, b.pending = false, b.pending[:0]
	case b.plain && lineStart && c == '>':
		b.quoted = true // a quoted line of a reply, as Dovecot leaves out
	default:
		b.keep(c)
	}
}

// keep appends c to the preview, after a space when white space came
// before it, or after the joiners since the character before it, unless
// that would go past PreviewChars.
func (b *previewBuilder) keep(c rune) {
	space := b.space && b.n > 0
	need := 1 + len(b.pending)
	if space {
		need++
	}
	if b.n+need > PreviewChars {
		b.done = true // so that no preview ends in a space or a joiner
		return
	}
	if space {
		b.out = append(b.out, ' ')
	}
	for _, j := range b.pending {
		b.out = utf8.AppendRune(b.out, j)
	}
	b.out = utf8.AppendRune(b.out, c)
	b.n += need
	b.space, b.joined, b.pending = false, true, b.pending[:0]
	b.done = b.n == PreviewChars
}

// join takes a joiner: kept between two characters, where it makes one
// of them (a Persian word's letters, the people of a family emoji), and
// after a character when it ends an emoji tag sequence (the flag of
// Scotland); dropped next to white space, hidden characters or the start
// of the text, where it is padding.
func (b *previewBuilder) join(c rune) {
	if !b.joined || len(b.pending) == maxPending {
		b.joined, b.pending = false, b.pending[:0]
		return
	}
	b.pending = append(b.pending, c)
	if c != cancelTag || b.n+len(b.pending) > PreviewChars {
		return
	}
	// Unicode TS 51, emoji tag sequences: the tags follow their base, and
	// CANCEL TAG ends them, whatever comes next.
	for _, j := range b.pending {
		b.out = utf8.AppendRune(b.out, j)
	}
	b.n += len(b.pending)
	b.pending = b.pending[:0]
	b.done = b.n == PreviewChars
}

// cancelTag ends an emoji tag sequence.
const cancelTag = '\U000E007F'

// joiner reports the characters that join those on either side, and
// show nothing on their own: ZERO WIDTH JOINER and NON-JOINER, and the
// tags of emoji tag sequences.
func joiner(c rune) bool {
	return c == '\u200c' || c == '\u200d' || c >= '\U000E0020' && c <= cancelTag
}

// blank reports characters that show as white space: those of Unicode
// (NBSP too), and the blank letters that pad text to look empty.
func blank(c rune) bool {
	switch c {
	case '\u115f', '\u1160', '\u2800', '\u3164', '\uffa0':
		return true
	}
	return unicode.IsSpace(c)
}

// hidden reports characters that show nothing: controls, format
// characters such as ZERO WIDTH SPACE, SOFT HYPHEN and the byte order
// mark, and COMBINING GRAPHEME JOINER, which joins nothing on its own.
func hidden(c rune) bool {
	return unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || c == '\u034f'
}

// htmlText reduces HTML to the text a browser shows, a character at a
// time: tags, comments and the content of <head>, <script>, <style> and
// the like left out, character references decoded, block elements
// separated by white space, <blockquote> content skipped. It is a
// tokenizer, not a parser: enough for a preview of real HTML mail, and
// never stuck on broken HTML, which makes text of what it cannot read.
type htmlText struct {
	b     *previewBuilder
	state htmlState
	name  []byte // the tag name being read, lower case; the entity being read
	end   bool   // the tag is an end tag
	quote rune   // the quote of the attribute value being read, or 0
	slash bool   // the tag's last character so far is a "/" outside quotes
	dash  int    // dashes just seen in a comment
	// opening is true from "<!--" up to the comment's first character
	// that is not its one "-": a ">" there closes it ("<!-->", "<!--->").
	opening bool
	// raw is the element whose content is skipped up to its end tag
	// (script, style, ...), or ""; rawEnd is "</" and its name.
	raw, rawEnd string
	// match counts the characters of rawEnd matched so far.
	match  int
	head   bool // within <head>
	quotes int  // depth of <blockquote>
}

type htmlState uint8

const (
	htmlData     htmlState = iota
	htmlOpen               // after "<"
	htmlTagName            // reading a tag's name
	htmlTag                // within a tag, after its name
	htmlMarkup             // after "<!"
	htmlComment            // within "<!--"
	htmlBogus              // within "<!..." or "<?...", up to ">"
	htmlEntity             // after "&"
	htmlRaw                // within the content of raw
	htmlRawClose           // after "</"+raw in raw content
)

// maxName bounds a tag name or a character reference as read.
const maxName = 32

// rawElement reports elements whose content is no text a reader sees,
// skipped up to their end tag whatever it holds.
func rawElement(name string) bool {
	switch name {
	case "script", "style", "title", "template", "noscript", "svg", "xml":
		return true
	}
	return false
}

// blockElement reports elements a browser puts on lines of their own.
func blockElement(name string) bool {
	switch name {
	case "address", "article", "aside", "blockquote", "body", "br", "center",
		"dd", "div", "dl", "dt", "figcaption", "figure", "footer", "form",
		"h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main",
		"nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul":
		return true
	}
	return false
}

// text passes a character of the document's text on, unless it is within
// <head> or a <blockquote>.
func (h *htmlText) text(c rune) {
	if !h.head && h.quotes == 0 {
		h.b.add(c)
	}
}

// feed takes the next character of the HTML.
func (h *htmlText) feed(c rune) {
	switch h.state {
	case htmlData:
		switch c {
		case '<':
			h.state = htmlOpen
		case '&':
			h.state, h.name = htmlEntity, h.name[:0]
		default:
			h.text(c)
		}
	case htmlOpen:
		switch {
		case c == '/' && !h.end:
			h.end = true
		case isASCIILetter(c):
			h.state, h.name = htmlTagName, append(h.name[:0], byte(unicode.ToLower(c)))
		case c == '!' && !h.end:
			h.state, h.dash = htmlMarkup, 0
		case c == '?' || h.end:
			h.state = htmlBogus // "</ " and "<?": up to ">"
		default:
			// "a < b": not a tag, as a browser reads it.
			h.state = htmlData
			h.text('<')
			h.feed(c)
		}
	case htmlTagName:
		switch {
		case isASCIILetter(c) || c >= '0' && c <= '9' || c == '-' || c == ':':
			if len(h.name) < maxName {
				h.name = append(h.name, byte(unicode.ToLower(c)))
			}
		default:
			h.state = htmlTag
			h.feed(c)
		}
	case htmlTag:
		slash := false
		switch {
		case h.quote != 0:
			if c == h.quote {
				h.quote = 0
			}
		case c == '"' || c == '\'':
			h.quote = c
		case c == '/':
			slash = true
		case c == '>':
			h.state = htmlData
			h.tag()
		}
		h.slash = slash
	case htmlMarkup:
		if c == '-' {
			if h.dash++; h.dash == 2 {
				h.state, h.dash, h.opening = htmlComment, 0, true
			}
			return
		}
		h.state = htmlBogus
		h.feed(c)
	case htmlComment:
		// As browsers read them, "<!-->" and "<!--->" are empty
		// comments, not the start of one that hides the rest.
		switch {
		case c == '-':
			h.dash++
			h.opening = h.opening && h.dash == 1
		case c == '>' && (h.dash >= 2 || h.opening):
			h.state = htmlData
		default:
			h.dash, h.opening = 0, false
		}
	case htmlBogus:
		if c == '>' {
			h.state, h.end = htmlData, false
		}
	case htmlEntity:
		if (isASCIILetter(c) || c >= '0' && c <= '9' || c == '#') && len(h.name) < maxName {
			h.name = append(h.name, byte(c))
			return
		}
		h.state = htmlData
		h.reference(c == ';')
		if c != ';' {
			h.feed(c)
		}
	case htmlRaw:
		// Only "</" and the element's name end it: "a<b" in a script
		// is no tag.
		want := h.rawEnd
		switch {
		case h.match < len(want) && unicode.ToLower(c) == rune(want[h.match]):
			if h.match++; h.match == len(want) {
				h.state = htmlRawClose
			}
		case c == '<':
			h.match = 1
		default:
			h.match = 0
		}
	case htmlRawClose:
		switch {
		case c == '>' || c == '/' || unicode.IsSpace(c):
			h.name = append(h.name[:0], h.raw...)
			h.raw, h.match, h.end = "", 0, true
			h.state = htmlTag
			h.feed(c)
		default:
			h.state, h.match = htmlRaw, 0 // "</scripts"
			h.feed(c)
		}
	}
}

// reference passes on the text of the character reference just read, its
// name in h.name, ended by a ";" or not. Numbers and the names of
// padding, the most of a newsletter's references, are decoded here,
// without the allocations of html.UnescapeString, which decodes the
// rest.
func (h *htmlText) reference(semicolon bool) {
	if c, ok := numericReference(h.name, semicolon); ok {
		h.text(c)
		return
	}
	if c := namedReference(string(h.name), semicolon); c != 0 {
		h.text(c)
		return
	}
	ref := make([]byte, 0, len(h.name)+2)
	ref = append(append(ref, '&'), h.name...)
	if semicolon {
		ref = append(ref, ';')
	}
	for _, r := range html.UnescapeString(string(ref)) {
		h.text(r)
	}
}

// numericReference decodes "#8203" and "#x200b" as html.UnescapeString
// does, but for the numbers it maps to Windows-1252's characters, the
// shortest references and what is not a number alone, left to it.
func numericReference(name []byte, semicolon bool) (rune, bool) {
	if len(name) < 2 || name[0] != '#' || len(name) == 2 && !semicolon {
		return 0, false
	}
	digits, base := name[1:], rune(10)
	if digits[0] == 'x' || digits[0] == 'X' {
		digits, base = digits[1:], 16
	}
	if len(digits) == 0 {
		return 0, false
	}
	var c rune
	for _, d := range digits {
		var v rune
		switch {
		case d >= '0' && d <= '9':
			v = rune(d - '0')
		case base == 16 && d >= 'a' && d <= 'f':
			v = rune(d-'a') + 10
		case base == 16 && d >= 'A' && d <= 'F':
			v = rune(d-'A') + 10
		default:
			return 0, false // "&#12ab;": a number, then text
		}
		c = min(c*base+v, utf8.MaxRune+1)
	}
	switch {
	case c >= 0x80 && c <= 0x9f:
		return 0, false
	case c == 0 || c > utf8.MaxRune || c >= 0xd800 && c <= 0xdfff:
		return utf8.RuneError, true
	}
	return c, true
}

// namedReference decodes the names of characters that show nothing or
// white space, those that pad newsletters, and the most common others;
// it returns 0 for the rest. The few names that HTML knows without their
// ";" too are decoded either way.
func namedReference(name string, semicolon bool) rune {
	switch name {
	case "nbsp":
		return '\u00a0'
	case "shy":
		return '\u00ad'
	case "amp":
		return '&'
	case "lt":
		return '<'
	case "gt":
		return '>'
	case "quot":
		return '"'
	}
	if !semicolon {
		return 0
	}
	switch name {
	case "zwnj":
		return '\u200c'
	case "zwj":
		return '\u200d'
	case "ZeroWidthSpace", "NegativeVeryThinSpace", "NegativeThinSpace", "NegativeMediumSpace", "NegativeThickSpace":
		return '\u200b'
	case "NonBreakingSpace":
		return '\u00a0'
	case "ensp":
		return '\u2002'
	case "emsp":
		return '\u2003'
	case "thinsp", "ThinSpace":
		return '\u2009'
	case "hairsp", "VeryThinSpace":
		return '\u200a'
	case "NoBreak":
		return '\u2060'
	case "lrm":
		return '\u200e'
	case "rlm":
		return '\u200f'
	case "apos":
		return '\''
	}
	return 0
}

// tag acts on the tag just read, at its ">".
func (h *htmlText) tag() {
	name := string(h.name)
	end := h.end
	h.end, h.name = false, h.name[:0]
	if !end && h.slash {
		// "<svg/>", "<title/>": an element with no content, rather
		// than one that hides all that follows (a browser reads some of
		// them as start tags, but a preview had better show too much
		// than nothing).
		if blockElement(name) {
			h.text(' ')
		}
		return
	}
	switch name {
	case "head":
		h.head = !end
	case "body":
		h.head = false // a <head> never ended
	case "blockquote":
		if end && h.quotes > 0 {
			h.quotes--
		} else if !end {
			h.quotes++
		}
	}
	if !end && rawElement(name) {
		h.state, h.raw, h.rawEnd, h.match = htmlRaw, name, "</"+name, 0
		return
	}
	if blockElement(name) {
		h.text(' ')
	}
}

func isASCIILetter(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
