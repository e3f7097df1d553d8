package render

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/segmentio/encoding/json"

	"github.com/microtrigger/microtrigger/schema"
)

func command(template string, data map[string]any) *schema.SendCommand {
	return &schema.SendCommand{
		ID: "c0ffee", UserID: "u1", Email: "ada@example.com", Trigger: "cart-abandonment", Step: 2,
		Template: template, Variant: "B", Intent: schema.IntentMid,
		SendAt: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), Data: data, Cause: "m1",
	}
}

func loadProductTemplates(t *testing.T) *Local {
	t.Helper()
	l, err := LoadLocal(os.DirFS("../../testdata/templates"), Address{Email: "hello@shop.example", Name: "Example Shop"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestLocalGolden renders the product's templates; rewrite with -rewrite.
func TestLocalGolden(t *testing.T) {
	l := loadProductTemplates(t)
	datadriven.RunTest(t, "testdata/local", func(t *testing.T, d *datadriven.TestData) string {
		var name string
		d.ScanArgs(t, "template", &name)
		var data map[string]any
		if s := strings.TrimSpace(d.Input); s != "" {
			if err := json.Unmarshal([]byte(s), &data); err != nil {
				t.Fatal(err)
			}
		}
		m, err := l.Render(command(name, data))
		if err != nil {
			return "error: " + err.Error() + "\n"
		}
		return "subject: " + m.Subject + "\n--- text\n" + m.Text + "--- html\n" + m.HTML
	})
}

// TestEveryTemplateGuardsAbsentData renders every template with no merge
// data and with typical data: nothing may print a Go zero marker.
func TestEveryTemplateGuardsAbsentData(t *testing.T) {
	l := loadProductTemplates(t)
	want := []string{"pricing-help", "cart-reminder", "cart-incentive", "cart-last-call", "checkout-discount",
		"product-interest", "demo-help", "form-help", "expert-qa", "see-pricing", "we-miss-you", "support-offer", "vip-cart", "wishlist-reminder", "trial-mobile-app"}
	for _, name := range want {
		for _, data := range []map[string]any{nil, {"offer": "discount", "product_name": "Trail Runner 2", "price": 129.5,
			"cart_value": 240.0, "pricing_views": 3.0, "help_pages": 4.0, "product_path": "/p/trail-runner-2", "form": "contact", "follow_up": true}} {
			m, err := l.Render(command(name, data))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for part, s := range map[string]string{"subject": m.Subject, "text": m.Text, "html": m.HTML} {
				if strings.TrimSpace(s) == "" || strings.Contains(s, "<no value>") || strings.Contains(s, "<nil>") {
					t.Errorf("%s %s with data %v: %q", name, part, data, s)
				}
			}
		}
	}
	if got := l.Names(); len(got) != len(want) {
		t.Errorf("templates %v, want %v", got, want)
	}
}

func TestLocalUnknownTemplate(t *testing.T) {
	l := loadProductTemplates(t)
	_, err := l.Render(command("nope", nil))
	if !errors.Is(err, ErrUnknownTemplate) {
		t.Fatalf("err = %v, want ErrUnknownTemplate", err)
	}
}

func TestLocalEscaping(t *testing.T) {
	l := loadProductTemplates(t)
	m, err := l.Render(command("expert-qa", map[string]any{"product_name": "Tom & <Jerry>\r\nBcc: x@y"}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.HTML, "Tom &amp; &lt;Jerry&gt;") {
		t.Errorf("html not escaped: %s", m.HTML)
	}
	if !strings.Contains(m.Text, "Tom & <Jerry>") {
		t.Errorf("text escaped: %s", m.Text)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject holds a line break: %q", m.Subject)
	}
}

func TestProductMappingFile(t *testing.T) {
	b, err := os.ReadFile("../../testdata/templates/sendgrid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := LoadMapping(b)
	if err != nil {
		t.Fatal(err)
	}
	l := loadProductTemplates(t)
	for _, name := range l.Names() {
		if _, ok := m.Templates[name]; !ok {
			t.Errorf("sendgrid.yaml lacks template %s", name)
		}
	}
	msg, err := NewDynamic(m).Render(command("vip-cart", map[string]any{"cart_value": 300.0}))
	if err != nil {
		t.Fatal(err)
	}
	if msg.From.Email != "vip@shop.example" || msg.TemplateID != "d-5b0f2c1e9a8d4c7b8e6f1a2b3c4d5e13" ||
		strings.Join(msg.Categories, ",") != "microtrigger,cart,vip" || msg.ReplyTo.Email != "help@shop.example" {
		t.Errorf("vip-cart message %+v", msg)
	}
	want := map[string]string{"command_id": "c0ffee", "user_id": "u1", "trigger": "cart-abandonment", "step": "2", "template": "vip-cart", "variant": "B"}
	for k, v := range want {
		if msg.CustomArgs[k] != v {
			t.Errorf("custom arg %s = %q, want %q", k, msg.CustomArgs[k], v)
		}
	}
	if msg.Data["cart_value"] != 300.0 || msg.Data["step"] != 2 || msg.Data["trigger"] != "cart-abandonment" {
		t.Errorf("data %v", msg.Data)
	}
	if _, err := NewDynamic(m).Render(command("nope", nil)); !errors.Is(err, ErrUnknownTemplate) {
		t.Errorf("unknown template: %v", err)
	}
}

func TestMappingErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"no from", "templates: {a: {id: d-1}}", "from: email is required"},
		{"bad id", "from: {email: a@b.c}\ntemplates: {a: {id: 1234}}", "not a SendGrid dynamic template id"},
		{"unknown key", "from: {email: a@b.c}\nsender: x\ntemplates: {a: {id: d-1}}", "unknown field"},
		{"duplicate key", "from: {email: a@b.c}\ntemplates: {a: {id: d-1}, a: {id: d-2}}", "already defined"},
		{"no templates", "from: {email: a@b.c}", "templates: none listed"},
		{"too many categories", "from: {email: a@b.c}\ncategories: [a,b,c,d,e,f]\ntemplates: {a: {id: d-1, categories: [g,h,i,j,k]}}", "11 categories"},
		{"bad address", "from: {email: 'x <a@b.c>'}\ntemplates: {a: {id: d-1}}", "is not an address"},
		{"not yaml", "from: [", "mapping file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadMapping([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// FuzzLoadMapping: any input either loads into a mapping that validates and
// renders, or is refused with an error; never a panic.
func FuzzLoadMapping(f *testing.F) {
	if b, err := os.ReadFile("../../testdata/templates/sendgrid.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("from: {email: a@b.c}\ntemplates: {a: {id: d-1}}"))
	f.Add([]byte("from: {email: a@b.c}\ntemplates: {a: {id: d-1, from: {name: x}}}"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := LoadMapping(b)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("loaded mapping does not validate: %v", err)
		}
		for name := range m.Templates {
			msg, err := NewDynamic(m).Render(command(name, nil))
			if err != nil {
				t.Fatalf("render %q: %v", name, err)
			}
			if len(msg.Categories) > MaxCategories || msg.From.Email == "" {
				t.Fatalf("bad message %+v", msg)
			}
		}
	})
}
