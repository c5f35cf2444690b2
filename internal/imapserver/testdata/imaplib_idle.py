#!/usr/bin/env python3
"""IDLE with imaplib: one connection idles, a second one appends and
flags; the first must hear of it while idling.

Usage: imaplib_idle.py HOST PORT USER PASSWORD
"""
import imaplib
import socket
import sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def fail(what):
    print("FAIL:", what)
    sys.exit(1)


A = imaplib.IMAP4(host, port)
A.login(user, password)
typ, data = A.select("INBOX")
before = int(data[0])
if b"IDLE" not in A.capabilities and "IDLE" not in A.capabilities:
    fail("no IDLE capability: %r" % (A.capabilities,))

tag = A._new_tag()
A.send(tag + b" IDLE\r\n")
line = A.readline()
if not line.startswith(b"+"):
    fail("IDLE not accepted: %r" % line)
A.sock.settimeout(30)

B = imaplib.IMAP4(host, port)
B.login(user, password)
B.append("INBOX", None, None, b"Subject: wake up\r\n\r\nidle test\r\n")

try:
    line = A.readline()
except socket.timeout:
    fail("no notification during IDLE")
if line.strip() != b"* %d EXISTS" % (before + 1):
    fail("expected EXISTS, got %r" % line)
print("ok: EXISTS during IDLE:", line.strip().decode())

B.select("INBOX")
B.store(str(before + 1), "+FLAGS", r"(\Flagged)")
line = A.readline()
if b"FETCH" not in line or b"\\Flagged" not in line:
    fail("expected FETCH FLAGS, got %r" % line)
print("ok: FETCH during IDLE:", line.strip().decode())

A.send(b"DONE\r\n")
line = A.readline()
if not line.startswith(tag + b" OK"):
    fail("IDLE end: %r" % line)
A.logout()
B.logout()
print("PASS")
