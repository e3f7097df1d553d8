// Package soak is microtrigger's fault harness. Its test (TestSoak) runs
// real `microtrigger` processes, built with the faults tag, against the
// embedded broker run as its own process, and a SendGrid stand-in on
// loopback, and does to them what production does:
//
//   - a backlog of at least 10,000 users published before the processors
//     start, then live traffic at the wall clock;
//   - processors killed with SIGKILL at each named crash point of
//     internal/crashpoint (before produce, after produce before commit,
//     after commit before Pebble, mid-restore on an empty volume), each
//     time restarted as Kubernetes restarts a pod;
//   - an instance joining (a rebalance) and one killed for good (its
//     partitions taken over once its session times out);
//   - the broker stopped and started again on the same port and data;
//   - sinks killed between recording a request and sending it, and between
//     SendGrid accepting it and recording that, and SendGrid answering 429,
//     500, 503, hanging, and cutting connections before and after
//     accepting; the stand-in posts its signed event webhook as SendGrid
//     does.
//
// It then checks the send-commands on the topic (read committed) against
// `microtrigger backtest` over the same events, and every command against
// what SendGrid accepted and what was dead-lettered, and reports lost,
// doubled and dead-lettered commands and the takeover times.
//
// `make test` runs the short profile; `make soak` the long one
// (MICROTRIGGER_SOAK=long). MICROTRIGGER_SOAK_OUT keeps the report and every
// process's log in a directory. The package holds no code of its own: it is
// the harness, not a library.
package soak
