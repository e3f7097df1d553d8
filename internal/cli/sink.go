package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/microtrigger/microtrigger/internal/telemetry"
	"github.com/microtrigger/microtrigger/schema"
	"github.com/microtrigger/microtrigger/sink"
	"github.com/microtrigger/microtrigger/sink/localmail"
	"github.com/microtrigger/microtrigger/sink/render"
	"github.com/microtrigger/microtrigger/sink/sendgrid"
	"github.com/microtrigger/microtrigger/sink/webhook"
)

// envSendGridKey holds the SendGrid API key when no key file is given.
const envSendGridKey = "MICROTRIGGER_SENDGRID_API_KEY"

type sinkFlags struct {
	kafka       kafkaFlags
	cfg         sink.Config
	instanceID  string
	transport   string
	out         string
	templates   string
	from        string
	sgTemplates string
	sgURL       string
	sgKeyFile   string
	sg          sendgrid.Config
	sgTimeout   time.Duration
	sgUnknown   time.Duration
	eventsTopic string
	hookListen  string
	hookKeyFile string
	hookMaxAge  time.Duration
	hookMaxBody int64
	hookWindow  time.Duration
	metricsAddr string
}

func registerSink(app *kingpin.Application, e *env) {
	var f sinkFlags
	cmd := app.Command("sink", "Run the delivery worker: send-commands in, email out (SendGrid, console or .eml files); serves SendGrid's event webhook.")
	addKafkaFlags(cmd, &f.kafka, "")
	cmd.Flag("group", "Consumer group.").Default("microtrigger-sink").StringVar(&f.cfg.Group)
	cmd.Flag("instance-id", "Static group membership id, stable per instance (e.g. the pod name): a restarted instance takes its partitions back at once.").StringVar(&f.instanceID)
	cmd.Flag("state-dir", "Directory for the ledger's Pebble stores (rebuilt from the changelog when empty).").Required().StringVar(&f.cfg.StateDir)
	cmd.Flag("transport", "Where email goes: console (print), file (.eml files in --out) or sendgrid.").Default("console").EnumVar(&f.transport, "console", "file", "sendgrid")
	cmd.Flag("out", "Directory of the file transport's .eml files.").Default("out/mail").StringVar(&f.out)
	cmd.Flag("templates", "Local html/template directory of the console and file transports (default: the built-in templates).").StringVar(&f.templates)
	cmd.Flag("from", "Sender of the console and file transports' emails.").Default("microtrigger@localhost").StringVar(&f.from)
	cmd.Flag("sendgrid.templates", "SendGrid mapping file: template name to dynamic template id, sender, categories.").StringVar(&f.sgTemplates)
	cmd.Flag("sendgrid.url", "SendGrid API base URL.").Default(sendgrid.DefaultBaseURL).StringVar(&f.sgURL)
	cmd.Flag("sendgrid.api-key-file", "File holding the SendGrid API key (else $"+envSendGridKey+"). Never given as a flag value.").StringVar(&f.sgKeyFile)
	cmd.Flag("sendgrid.rate-limit", "Most mail send requests started per second (negative: unlimited).").Default("50").Float64Var(&f.sg.RateLimit)
	cmd.Flag("sendgrid.rate-burst", "Requests allowed at once above the rate.").Default("10").IntVar(&f.sg.RateBurst)
	cmd.Flag("sendgrid.batch-size", "Most personalizations per request (1 to 1000).").Default("1000").IntVar(&f.sg.BatchSize)
	cmd.Flag("sendgrid.concurrency", "Requests in flight at once.").Default("4").IntVar(&f.sg.Concurrency)
	cmd.Flag("sendgrid.max-attempts", "Attempts per request before its messages are dead-lettered (retries_exhausted).").Default("8").IntVar(&f.sg.MaxAttempts)
	cmd.Flag("sendgrid.retry-budget", "Longest time spent retrying one request.").Default("15m").DurationVar(&f.sg.RetryBudget)
	cmd.Flag("sendgrid.timeout", "Timeout of one request.").Default("30s").DurationVar(&f.sgTimeout)
	cmd.Flag("sendgrid.unknown-deadline", "How long after a request whose answer never came to wait for SendGrid's events proving its emails accepted; then they are dead-lettered as outcome_unknown, never sent again (0: at once).").
		Default(sink.DefaultUnknownDeadline.String()).DurationVar(&f.sgUnknown)
	cmd.Flag("ledger.retention", "How long a sent command id is remembered.").Default("720h").DurationVar(&f.cfg.LedgerRetention)
	cmd.Flag("topic.commands", "Input topic.").Default(schema.TopicCommands).StringVar(&f.cfg.Topics.Commands)
	cmd.Flag("topic.commands-dlq", "Dead-letter topic for undeliverable commands.").Default(schema.TopicCommandsDLQ).StringVar(&f.cfg.Topics.CommandsDLQ)
	cmd.Flag("topic.changelog", "The ledger's compacted changelog, co-partitioned with send-commands.").Default(schema.TopicSinkChangelog).StringVar(&f.cfg.Topics.Changelog)
	cmd.Flag("topic.events", "Topic the webhook publishes into.").Default(schema.TopicEvents).StringVar(&f.eventsTopic)
	cmd.Flag("topic.outcomes", "SendGrid's events about the sink's emails, from the webhook to the sink owning each; as many partitions as send-commands.").Default(schema.TopicSinkOutcomes).StringVar(&f.cfg.Topics.Outcomes)
	cmd.Flag("webhook.listen", "Address serving SendGrid's event webhook at /sendgrid/events (empty: none).").StringVar(&f.hookListen)
	cmd.Flag("webhook.public-key-file", "SendGrid's webhook verification key (PEM, or the base64 string of its settings page).").StringVar(&f.hookKeyFile)
	cmd.Flag("webhook.max-age", "Refuse webhook requests whose timestamp is further from now than this.").Default("10m").DurationVar(&f.hookMaxAge)
	cmd.Flag("webhook.max-body", "Largest webhook body in bytes.").Default("8388608").Int64Var(&f.hookMaxBody)
	cmd.Flag("webhook.dedupe-window", "How long a published SendGrid event id is remembered, so that a redelivery is not published again.").Default("25h").DurationVar(&f.hookWindow)
	cmd.Flag("metrics.listen", "Address serving /metrics, /healthz and /readyz (empty: none).").Default(":9465").StringVar(&f.metricsAddr)
	cmd.Action(e.selects(func(ctx context.Context) error { return e.sink(ctx, &f) }))
}

func (e *env) sink(ctx context.Context, f *sinkFlags) error {
	kopts, err := f.kafka.opts()
	if err != nil {
		return e.usageError("sink", "%v", err)
	}
	logger := e.logger()
	tel, err := telemetry.New()
	if err != nil {
		return err
	}
	stopTracing, err := tel.StartTracing(ctx, "microtrigger-sink")
	if err != nil {
		return err
	}
	defer stopTracing()
	transport, err := e.sinkTransport(f, tel)
	if err != nil {
		return err
	}
	if f.hookListen != "" && f.hookKeyFile == "" {
		return e.usageError("sink", "--webhook.listen needs --webhook.public-key-file")
	}
	cfg := f.cfg
	cfg.Kafka = kopts
	if f.instanceID != "" {
		cfg.Kafka = append(append([]kgo.Opt{}, kopts...), kgo.InstanceID(f.instanceID))
	}
	cfg.Transport = transport
	cfg.Logger = logger
	cfg.Meter = tel.MeterProvider()
	cfg.Hooks = tel.KafkaHooks("sink")
	cfg.UnknownDeadline = f.sgUnknown
	if f.sgUnknown <= 0 {
		cfg.UnknownDeadline = -1 // dead-letter at once
	}
	s, err := sink.New(cfg)
	if err != nil {
		return e.usageError("sink", "%v", err)
	}
	if f.transport == "sendgrid" && f.hookListen == "" {
		// Another process may serve the webhook into the same topics;
		// if none does, the deadline decides every unknown outcome.
		logger.Warn("no webhook here (--webhook.listen): unless another instance serves SendGrid's event webhook, a request whose answer never came cannot be settled by SendGrid's events; its emails are dead-lettered as outcome_unknown, never sent again, after --sendgrid.unknown-deadline",
			"unknown_deadline", f.sgUnknown)
	}
	var (
		hook   *webhook.Handler
		hookLn net.Listener
	)
	if f.hookListen != "" {
		keyPEM, err := os.ReadFile(f.hookKeyFile)
		if err != nil {
			return e.usageError("sink", "read --webhook.public-key-file: %v", err)
		}
		pub, err := webhook.ParsePublicKey(keyPEM)
		if err != nil {
			return e.usageError("sink", "%v", err)
		}
		producer, err := kgo.NewClient(kopts...)
		if err != nil {
			return err
		}
		defer producer.Close()
		hook, err = webhook.New(webhook.Config{
			PublicKey: pub, Producer: producer, Kafka: kopts, Dir: filepath.Join(f.cfg.StateDir, "webhook"),
			Topic: f.eventsTopic, OutcomesTopic: f.cfg.Topics.Outcomes,
			MaxAge: f.hookMaxAge, MaxBody: f.hookMaxBody, DedupeWindow: f.hookWindow,
			Logger: logger, Meter: tel.MeterProvider(),
		})
		if err != nil {
			return err
		}
		defer hook.Close() // after g.Wait: nothing reads the store then
		if hookLn, err = net.Listen("tcp", f.hookListen); err != nil {
			return fmt.Errorf("listen for the webhook on %s: %w", f.hookListen, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.Run(gctx) })
	ready := s.Readiness
	if hook != nil {
		ready = func() error {
			if err := s.Readiness(); err != nil {
				return err
			}
			if !hook.Ready() {
				return errors.New("the webhook's dedupe store is catching up with " + f.cfg.Topics.Outcomes)
			}
			return nil
		}
		mux := http.NewServeMux()
		mux.Handle("/sendgrid/events", hook)
		logger.Info("webhook listening", "addr", hookLn.Addr().String(), "path", "/sendgrid/events")
		g.Go(func() error { return hook.Run(gctx) })
		g.Go(func() error { return telemetry.ServeListener(gctx, hookLn, mux) })
	}
	g.Go(func() error {
		return telemetry.Serve(gctx, f.metricsAddr, tel.Handler(telemetry.Probes{Live: s.Liveness, Ready: ready}))
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (e *env) sinkTransport(f *sinkFlags, tel *telemetry.Telemetry) (sink.Transport, error) {
	if f.transport == "sendgrid" {
		if f.sgTemplates == "" {
			return nil, e.usageError("sink", "--transport sendgrid needs --sendgrid.templates")
		}
		b, err := os.ReadFile(f.sgTemplates)
		if err != nil {
			return nil, e.usageError("sink", "read --sendgrid.templates: %v", err)
		}
		m, err := render.LoadMapping(b)
		if err != nil {
			return nil, e.usageError("sink", "%s: %v", f.sgTemplates, err)
		}
		key, err := readSecret(f.sgKeyFile, envSendGridKey)
		if err != nil {
			return nil, e.usageError("sink", "%v", err)
		}
		if key == "" {
			return nil, e.usageError("sink", "no SendGrid API key: set --sendgrid.api-key-file or $%s", envSendGridKey)
		}
		cfg := f.sg
		cfg.APIKey = sendgrid.APIKey(key)
		cfg.BaseURL = f.sgURL
		cfg.Logger = e.logger()
		cfg.Meter = tel.MeterProvider()
		cfg.Tracer = tel.TracerProvider()
		cfg.Timeout = f.sgTimeout
		c, err := sendgrid.New(cfg)
		if err != nil {
			return nil, e.usageError("sink", "%v", err)
		}
		return sink.SendGrid(c, m), nil
	}
	var tfs fs.FS = e.assets.Templates
	if f.templates != "" {
		if err := e.needDir("sink", "--templates", f.templates, aTemplates); err != nil {
			return nil, err
		}
		tfs = os.DirFS(f.templates)
	}
	if tfs == nil {
		return nil, e.usageError("sink", "no templates: set --templates")
	}
	l, err := render.LoadLocal(tfs, render.Address{Email: f.from})
	if err != nil {
		return nil, e.usageError("sink", "%v", err)
	}
	if f.transport == "file" {
		d, err := localmail.NewDir(f.out, nil)
		if err != nil {
			return nil, err
		}
		return sink.Files(d, l), nil
	}
	return sink.Console(e.stdout, l), nil
}
