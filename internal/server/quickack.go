package server

import "net"

// QuickAck asks the kernel to acknowledge what nc receives next at once
// rather than after its delayed-ACK timer (40 ms on Linux). A server calls
// it when it has invited a client to send data and then waits for it: a
// synchronising literal after "+ " (IMAP), a message after 354 (SMTP,
// LMTP). A client that writes the data and then a short end (imaplib
// sends a literal and its CRLF in two writes, as many do) has its
// kernel hold the end back under Nagle's algorithm until the data is
// acknowledged; with the ACK delayed, every such command waits 40 ms.
// Dovecot does the same before each read. It does nothing where the
// system has no such option, or nc is not TCP.
func QuickAck(nc net.Conn) {
	if tcp := TCPConn(nc); tcp != nil {
		quickAck(tcp)
	}
}
