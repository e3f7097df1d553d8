// Package deploy holds the deployment artefacts and their offline checks:
// the container image (Dockerfile), the Kubernetes manifests (k8s/), what
// monitors them (monitoring/: a Grafana dashboard, Prometheus alerts and
// their unit tests, a ServiceMonitor and a PrometheusRule for the
// Prometheus Operator) and, through its tests, the repository's
// docker-compose.yml.
//
// It has no code of its own and nothing imports it. Its tests read the
// artefacts without a Docker engine or a cluster: every manifest is
// strict-decoded into the Kubernetes API types, the compose file is loaded
// with the compose-spec loader, and every command line they hold is parsed by
// the real microtrigger command-line interface ([cli.Main]). The alerts go
// through `promtool check rules` and `promtool test rules`, the dashboard's
// queries through promtool's parser, and every metric the dashboard and the
// alerts name is checked against the scrapes of a processor and a sink
// running in the test on the embedded broker. They run in `make test` like
// every other package.
//
// What it must not do: build images, talk to a cluster or a Docker engine,
// or hold configuration that the manifests do not use.
//
// [cli.Main]: https://pkg.go.dev/github.com/microtrigger/microtrigger/internal/cli#Main
package deploy
