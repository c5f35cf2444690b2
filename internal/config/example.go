package config

import (
	_ "embed"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"

	"github.com/BurntSushi/toml"
)

// The sample config is generated from this package's own source, so the
// comments a reader sees in `buzon config example` are the doc comments on
// the fields.
//
//go:embed config.go
var configSource string

// Example returns a commented sample configuration file with every setting
// at its default value.
func Example() (string, error) {
	docs, err := DocComments(configSource)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("# buzon configuration. Every setting is shown with its default.\n")
	b.WriteString("# Command-line flags override this file.\n")
	writeTable(&b, docs, "", reflect.ValueOf(Default()))
	return b.String(), nil
}

// DocComments reads Go source declaring configuration structs and maps
// "Type" to each struct type's doc comment and "Type.Field" to each field's,
// so a package can generate its sample configuration from the comments
// where its settings are declared (embed the file with go:embed).
func DocComments(source string) (map[string]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", source, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("parse embedded config source: %w", err)
	}
	docs := map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range gd.Specs {
			ts, ok := spec.(*ast.TypeSpec)
			if !ok {
				continue
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			if gd.Doc != nil {
				docs[ts.Name.Name] = gd.Doc.Text()
			}
			for _, field := range st.Fields.List {
				for _, name := range field.Names {
					docs[ts.Name.Name+"."+name.Name] = field.Doc.Text()
				}
			}
		}
	}
	return docs, nil
}

// writeTable writes the plain settings of v, then each nested table.
func writeTable(b *strings.Builder, docs map[string]string, prefix string, v reflect.Value) {
	t := v.Type()
	var tables []int
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("toml")
		if f.Type.Kind() == reflect.Struct {
			tables = append(tables, i)
			continue
		}
		b.WriteString("\n")
		WriteComment(b, docs[t.Name()+"."+f.Name])
		value, _ := toml.Marshal(map[string]any{key: v.Field(i).Interface()})
		b.Write(value)
	}
	for _, i := range tables {
		f := t.Field(i)
		name := prefix + f.Tag.Get("toml")
		b.WriteString("\n")
		WriteComment(b, docs[f.Type.Name()])
		fmt.Fprintf(b, "[%s]\n", name)
		writeTable(b, docs, name+".", v.Field(i))
	}
}

// WriteComment writes a doc comment as TOML comment lines.
func WriteComment(b *strings.Builder, doc string) {
	for _, line := range strings.Split(strings.TrimRight(doc, "\n "), "\n") {
		if strings.TrimSpace(line) == "" {
			b.WriteString("#\n")
			continue
		}
		b.WriteString("# " + line + "\n")
	}
}
