package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaFlags are the connection settings every Kafka-facing command takes.
// They become []kgo.Opt; microtrigger never wraps franz-go's configuration.
type kafkaFlags struct {
	brokers       string
	tls           bool
	tlsCA         string
	tlsServerName string
	saslMechanism string
	saslUser      string
	saslPassFile  string
}

// addKafkaFlags adds the connection flags. They mean the same for every
// command, so they read the same variables (MICROTRIGGER_BROKERS, …).
func addKafkaFlags(cmd *kingpin.CmdClause, k *kafkaFlags, brokersDefault string) {
	f := shared(cmd.Flag("brokers", "Kafka seed brokers, comma separated (host:port,...)."), "brokers")
	if brokersDefault != "" {
		f.Default(brokersDefault)
	}
	f.StringVar(&k.brokers)
	shared(cmd.Flag("tls", "Connect to the brokers over TLS."), "tls").BoolVar(&k.tls)
	shared(cmd.Flag("tls.ca", "PEM file of CA certificates for the brokers (implies --tls)."), "tls.ca").StringVar(&k.tlsCA)
	shared(cmd.Flag("tls.server-name", "Server name to verify in the brokers' certificates."), "tls.server-name").StringVar(&k.tlsServerName)
	shared(cmd.Flag("sasl.mechanism", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."), "sasl.mechanism").EnumVar(&k.saslMechanism, "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
	shared(cmd.Flag("sasl.user", "SASL user name."), "sasl.user").StringVar(&k.saslUser)
	shared(cmd.Flag("sasl.password-file", "File holding the SASL password (else $"+envSASLPassword+")."), "sasl.password-file").StringVar(&k.saslPassFile)
}

// envSASLPassword holds the SASL password when no password file is given.
const envSASLPassword = "MICROTRIGGER_SASL_PASSWORD"

func (k *kafkaFlags) seeds() []string {
	var out []string
	for _, s := range strings.Split(k.brokers, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// opts turns the flags into client options.
func (k *kafkaFlags) opts() ([]kgo.Opt, error) {
	seeds := k.seeds()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("no Kafka brokers: set --brokers or MICROTRIGGER_BROKERS")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(seeds...)}
	if k.tls || k.tlsCA != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: k.tlsServerName}
		if k.tlsCA != "" {
			pem, err := os.ReadFile(k.tlsCA)
			if err != nil {
				return nil, fmt.Errorf("read --tls.ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--tls.ca %s holds no PEM certificate", k.tlsCA)
			}
			cfg.RootCAs = pool
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if k.saslMechanism != "" {
		pass, err := readSecret(k.saslPassFile, envSASLPassword)
		if err != nil {
			return nil, err
		}
		switch k.saslMechanism {
		case "PLAIN":
			opts = append(opts, kgo.SASL(plain.Auth{User: k.saslUser, Pass: pass}.AsMechanism()))
		case "SCRAM-SHA-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: k.saslUser, Pass: pass}.AsSha256Mechanism()))
		case "SCRAM-SHA-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: k.saslUser, Pass: pass}.AsSha512Mechanism()))
		}
	}
	return opts, nil
}
