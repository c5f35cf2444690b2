"""Deliver standard input over LMTP with Python's smtplib, reporting refused
recipients. Usage: lmtp_send.py HOST PORT FROM RCPT...
A HOST starting with "/" is a unix socket (PORT is then ignored)."""
import smtplib
import sys

host, port, sender, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
msg = sys.stdin.buffer.read()
with smtplib.LMTP(host, port) as lmtp:
    refused = lmtp.sendmail(sender, rcpts, msg)
for rcpt, (code, _) in sorted(refused.items()):
    print("refused", rcpt, code)
