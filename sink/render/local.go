package render

import (
	"bytes"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"path"
	"sort"
	"strings"
	texttemplate "text/template"

	"github.com/microtrigger/microtrigger/schema"
)

// Local renders local template files. Each file NAME.html in the directory
// is the template NAME and defines three templates: "subject", "html" and
// "text". The html part is executed by html/template (contextual escaping);
// the subject and the text part by text/template, so that "&" stays "&" in
// a plain-text email.
type Local struct {
	From      Address
	templates map[string]localTemplate
}

type localTemplate struct {
	html *htmltemplate.Template
	text *texttemplate.Template
}

// LoadLocal parses every *.html file at the top of fsys. from is the sender
// of the rendered messages.
func LoadLocal(fsys fs.FS, from Address) (*Local, error) {
	names, err := fs.Glob(fsys, "*.html")
	if err != nil {
		return nil, fmt.Errorf("list templates: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("load templates: no *.html file")
	}
	sort.Strings(names)
	l := &Local{From: from, templates: make(map[string]localTemplate, len(names))}
	for _, file := range names {
		b, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("read template %s: %w", file, err)
		}
		name := strings.TrimSuffix(path.Base(file), ".html")
		h, err := htmltemplate.New(name).Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", file, err)
		}
		t, err := texttemplate.New(name).Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", file, err)
		}
		for _, part := range []string{"subject", "html", "text"} {
			if h.Lookup(part) == nil {
				return nil, fmt.Errorf("template %s: no {{define %q}}", file, part)
			}
		}
		l.templates[name] = localTemplate{html: h, text: t}
	}
	return l, nil
}

// Names lists the templates, sorted.
func (l *Local) Names() []string {
	out := make([]string, 0, len(l.templates))
	for n := range l.templates {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Render executes the command's template.
func (l *Local) Render(cmd *schema.SendCommand) (Message, error) {
	t, ok := l.templates[cmd.Template]
	if !ok {
		return Message{}, fmt.Errorf("%w %q: no %s.html", ErrUnknownTemplate, cmd.Template, cmd.Template)
	}
	data := templateData(cmd)
	var subj, text, html bytes.Buffer
	if err := t.text.ExecuteTemplate(&subj, "subject", data); err != nil {
		return Message{}, fmt.Errorf("render %s subject: %w", cmd.Template, err)
	}
	if err := t.text.ExecuteTemplate(&text, "text", data); err != nil {
		return Message{}, fmt.Errorf("render %s text: %w", cmd.Template, err)
	}
	if err := t.html.ExecuteTemplate(&html, "html", data); err != nil {
		return Message{}, fmt.Errorf("render %s html: %w", cmd.Template, err)
	}
	return Message{
		CommandID:  cmd.ID,
		To:         Address{Email: cmd.Email},
		From:       l.From,
		Data:       data,
		CustomArgs: customArgs(cmd),
		Subject:    oneLine(subj.String()),
		HTML:       strings.TrimSpace(html.String()) + "\n",
		Text:       strings.TrimSpace(text.String()) + "\n",
	}, nil
}

// oneLine collapses runs of white space, line breaks included, so that a
// subject can never inject a header.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
