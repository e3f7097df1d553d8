package render

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/microtrigger/microtrigger/schema"
)

// Limits SendGrid puts on a message.
const (
	MaxCategories     = 10
	MaxCategoryLength = 255
)

// Mapping is the SendGrid mapping file: which dynamic template, sender and
// categories each template name uses.
//
//	from: {email: hello@shop.example, name: Example Shop}
//	reply_to: {email: help@shop.example}      # optional
//	categories: [microtrigger]                # on every message
//	asm_group_id: 4242                        # optional unsubscribe group
//	templates:
//	  cart-reminder: {id: d-2f6e0c9a1b7d4e3f8a5c6b7d8e9f0a1b, categories: [cart]}
//	  vip-cart: {id: d-…, from: {email: vip@shop.example, name: Shop VIP desk}}
type Mapping struct {
	From       Address                    `yaml:"from"`
	ReplyTo    Address                    `yaml:"reply_to"`
	Categories []string                   `yaml:"categories"`
	ASMGroupID int                        `yaml:"asm_group_id"`
	Templates  map[string]MappingTemplate `yaml:"templates"`
}

// MappingTemplate is one template's entry of a Mapping. From, ReplyTo and
// ASMGroupID override the file's defaults; Categories add to them.
type MappingTemplate struct {
	ID         string   `yaml:"id"`
	From       Address  `yaml:"from"`
	ReplyTo    Address  `yaml:"reply_to"`
	Categories []string `yaml:"categories"`
	ASMGroupID int      `yaml:"asm_group_id"`
}

// LoadMapping parses and checks a mapping file. Unknown and duplicate keys
// are errors; every problem found is reported, joined.
func LoadMapping(b []byte) (*Mapping, error) {
	var m Mapping
	if err := yaml.UnmarshalWithOptions(b, &m, yaml.DisallowUnknownField()); err != nil {
		return nil, fmt.Errorf("mapping file: %s", yaml.FormatError(err, false, false))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate reports every problem of m.
func (m *Mapping) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("mapping file: "+format, args...))
	}
	checkAddr := func(where string, a Address, required bool) {
		if a.Email == "" {
			if required {
				bad("%s: email is required", where)
			} else if a.Name != "" {
				bad("%s: a name without an email", where)
			}
			return
		}
		if !plausibleEmail(a.Email) {
			bad("%s: email %q is not an address", where, a.Email)
		}
		if strings.ContainsAny(a.Name, "\r\n") {
			bad("%s: name holds a line break", where)
		}
	}
	checkAddr("from", m.From, true)
	checkAddr("reply_to", m.ReplyTo, false)
	if m.ASMGroupID < 0 {
		bad("asm_group_id: must not be negative")
	}
	if len(m.Templates) == 0 {
		bad("templates: none listed")
	}
	names := make([]string, 0, len(m.Templates))
	for name := range m.Templates {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		t := m.Templates[name]
		where := "templates." + name
		if strings.TrimSpace(name) == "" {
			bad("templates: an empty template name")
		}
		if !strings.HasPrefix(t.ID, "d-") || len(t.ID) < 3 || strings.ContainsAny(t.ID, " \t\r\n/") {
			bad("%s: id %q is not a SendGrid dynamic template id (d-…)", where, t.ID)
		}
		checkAddr(where+".from", t.From, false)
		checkAddr(where+".reply_to", t.ReplyTo, false)
		if t.ASMGroupID < 0 {
			bad("%s.asm_group_id: must not be negative", where)
		}
		cats := m.categories(t)
		if len(cats) > MaxCategories {
			bad("%s: %d categories with the file's own, over SendGrid's %d", where, len(cats), MaxCategories)
		}
		for _, c := range cats {
			if c == "" || len(c) > MaxCategoryLength {
				bad("%s: category %q must be 1 to %d bytes", where, c, MaxCategoryLength)
			}
		}
	}
	return errors.Join(errs...)
}

// categories merges the file's and a template's categories, without
// duplicates (SendGrid refuses repeated categories), in a stable order.
func (m *Mapping) categories(t MappingTemplate) []string {
	out := make([]string, 0, len(m.Categories)+len(t.Categories))
	for _, c := range slices.Concat(m.Categories, t.Categories) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// plausibleEmail accepts what looks like local@domain, with no spaces,
// angle brackets or line breaks. SendGrid does the real validation.
func plausibleEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\r\n<>,;\"")
}

// Dynamic renders commands for SendGrid dynamic templates.
type Dynamic struct {
	m *Mapping
}

// NewDynamic returns a renderer for a checked mapping.
func NewDynamic(m *Mapping) *Dynamic { return &Dynamic{m: m} }

// Render maps cmd to its dynamic template.
func (d *Dynamic) Render(cmd *schema.SendCommand) (Message, error) {
	t, ok := d.m.Templates[cmd.Template]
	if !ok {
		return Message{}, fmt.Errorf("%w %q: not in the mapping file", ErrUnknownTemplate, cmd.Template)
	}
	if !plausibleEmail(cmd.Email) {
		return Message{}, fmt.Errorf("render: recipient %s is not an address", schema.MaskEmail(cmd.Email))
	}
	msg := Message{
		CommandID:  cmd.ID,
		To:         Address{Email: cmd.Email},
		From:       d.m.From,
		ReplyTo:    d.m.ReplyTo,
		TemplateID: t.ID,
		Data:       templateData(cmd),
		CustomArgs: customArgs(cmd),
		Categories: d.m.categories(t),
		ASMGroupID: d.m.ASMGroupID,
	}
	if t.From.Email != "" {
		msg.From = t.From
	}
	if t.ReplyTo.Email != "" {
		msg.ReplyTo = t.ReplyTo
	}
	if t.ASMGroupID != 0 {
		msg.ASMGroupID = t.ASMGroupID
	}
	return msg, nil
}
