// Package server holds what every buzon listener shares: the vetted
// listener (per-address connection limits over all listeners, the PROXY
// protocol, back-off when out of file descriptors), TLS setup and the
// self-signed certificate, and the Prometheus metrics.
//
// It does not import the protocol packages; cmd/buzon wires them to it.
package server
