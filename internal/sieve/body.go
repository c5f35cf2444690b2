package sieve

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/buzon-mail/buzon/internal/message"
)

// bodyCache holds what the body test read of the message, read once per
// run: at most maxBodyBytes, and its MIME structure.
type bodyCache struct {
	raw  []byte
	root *message.Part
	// texts are the parts' decoded texts, by the part's offset, so that
	// many body tests decode each part once.
	texts map[int64]string
}

func (r *run) loadBody() (*bodyCache, error) {
	if r.body != nil {
		return r.body, nil
	}
	c := &bodyCache{}
	r.body = c
	if r.msg.Body == nil {
		return c, nil
	}
	rc, err := r.msg.Body()
	if err != nil {
		return nil, fmt.Errorf("sieve: open the message for body: %w", err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxBodyBytes))
	if err != nil {
		return nil, fmt.Errorf("sieve: read the message for body: %w", err)
	}
	root, err := message.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("sieve: parse the message for body: %w", err)
	}
	c.raw, c.root = raw, root
	return c, nil
}

// bodyValues returns the strings a body test compares (RFC 5173 5):
// :raw the body undecoded, as one string; :text and :content the text of
// each part of the types asked for, transfer-decoded and in UTF-8.
func (r *run) bodyValues(t *test) ([]string, error) {
	c, err := r.loadBody()
	if err != nil || c.root == nil {
		return nil, err
	}
	if t.transform == bodyRaw {
		return []string{string(clip(c.raw, c.root.BodyStart, int64(len(c.raw))))}, nil
	}
	types := []string{"text"}
	if t.transform == bodyContent {
		if types, err = r.expandAll(t.contentTypes); err != nil {
			return nil, err
		}
	}
	var values []string
	var walk func(p *message.Part) error
	walk = func(p *message.Part) error {
		switch {
		case p.MediaType == "multipart":
			// RFC 5173 5.2: a multipart's own text is its prologue
			// and epilogue.
			if typeMatches(types, p) {
				values = append(values, multipartText(c.raw, p))
			}
			for i := range p.Parts {
				if err := walk(&p.Parts[i]); err != nil {
					return err
				}
			}
			return nil
		case len(p.Parts) == 1 && !typeMatches(types, p):
			// message/rfc822: the encapsulated message's parts
			// (RFC 5173 5.2).
			return walk(&p.Parts[0])
		case !typeMatches(types, p):
			return nil
		}
		text, ok := c.texts[p.HeaderStart]
		if !ok {
			b, err := io.ReadAll(p.TextReader(bytes.NewReader(clip(c.raw, p.BodyStart, p.End))))
			if err != nil {
				return err
			}
			text = string(b)
			if c.texts == nil {
				c.texts = map[int64]string{}
			}
			c.texts[p.HeaderStart] = text
		}
		if err := r.spend(int64(len(text))); err != nil {
			return err
		}
		values = append(values, text)
		return nil
	}
	if err := walk(c.root); err != nil {
		return nil, err
	}
	return values, nil
}

// typeMatches tells whether a part's type is one of the types of
// :content: "type" matches every subtype, "type/subtype" only itself and
// "" every part (RFC 5173 5.2).
func typeMatches(types []string, p *message.Part) bool {
	for _, t := range types {
		main, sub, hasSub := strings.Cut(t, "/")
		switch {
		case t == "":
			return true
		case !hasSub && strings.EqualFold(main, p.MediaType):
			return true
		case hasSub && strings.EqualFold(main, p.MediaType) && strings.EqualFold(sub, p.MediaSubtype):
			return true
		}
	}
	return false
}

// clip returns b[start:end] within b's bounds: the body test may have
// read only the start of a large message.
func clip(b []byte, start, end int64) []byte {
	n := int64(len(b))
	start, end = min(max(start, 0), n), min(max(end, 0), n)
	if start > end {
		return nil
	}
	return b[start:end]
}

// multipartText is the prologue and epilogue of a multipart: its body
// before the first part and after the last, without delimiter lines.
func multipartText(raw []byte, p *message.Part) string {
	boundary, _ := p.Param("boundary")
	delim := []byte("--" + boundary)
	var b strings.Builder
	regions := [][2]int64{{p.BodyStart, p.End}}
	if n := len(p.Parts); n > 0 {
		regions = [][2]int64{{p.BodyStart, p.Parts[0].HeaderStart}, {p.Parts[n-1].End, p.End}}
	}
	for _, r := range regions {
		for _, line := range bytes.SplitAfter(clip(raw, r[0], r[1]), []byte("\n")) {
			if boundary != "" && bytes.HasPrefix(bytes.TrimLeft(line, "\r\n"), delim) {
				continue
			}
			b.Write(line)
		}
	}
	return b.String()
}
