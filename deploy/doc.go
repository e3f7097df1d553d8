// Package deploy holds the deployment artefacts and their offline checks:
// the container image (Dockerfile), the Kubernetes manifests (k8s/) and,
// through its tests, the repository's docker-compose.yml.
//
// It has no code of its own and nothing imports it. Its tests read the
// artefacts without a Docker engine or a cluster: every manifest is
// strict-decoded into the Kubernetes API types, the compose file is loaded
// with the compose-spec loader, and every command line they hold is parsed by
// the real microtrigger command-line interface ([cli.Main]). They run in
// `make test` like every other package.
//
// What it must not do: build images, talk to a cluster or a Docker engine,
// or hold configuration that the manifests do not use.
//
// [cli.Main]: https://pkg.go.dev/github.com/microtrigger/microtrigger/internal/cli#Main
package deploy
