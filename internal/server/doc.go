// Package server holds what every buzon listener shares: TLS setup and the
// self-signed certificate, listener wrappers that enforce per-address
// connection limits and read the PROXY protocol, and the group that starts
// protocol servers and shuts them down together.
//
// It does not import the protocol packages: cmd/buzon hands it anything
// with Serve and Shutdown.
package server
