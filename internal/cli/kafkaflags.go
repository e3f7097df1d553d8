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

func addKafkaFlags(cmd *kingpin.CmdClause, k *kafkaFlags, brokersDefault string) {
	f := cmd.Flag("brokers", "Kafka seed brokers, comma separated (host:port,...).")
	if brokersDefault != "" {
		f.Default(brokersDefault)
	}
	f.StringVar(&k.brokers)
	cmd.Flag("tls", "Connect to the brokers over TLS.").BoolVar(&k.tls)
	cmd.Flag("tls.ca", "PEM file of CA certificates for the brokers (implies --tls).").StringVar(&k.tlsCA)
	cmd.Flag("tls.server-name", "Server name to verify in the brokers' certificates.").StringVar(&k.tlsServerName)
	cmd.Flag("sasl.mechanism", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.").EnumVar(&k.saslMechanism, "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
	cmd.Flag("sasl.user", "SASL user name.").StringVar(&k.saslUser)
	cmd.Flag("sasl.password-file", "File holding the SASL password (else $MICROTRIGGER_SASL_PASSWORD).").StringVar(&k.saslPassFile)
}

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
		pass, err := readSecret(k.saslPassFile, "MICROTRIGGER_SASL_PASSWORD")
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
