"""Deliver standard input over SMTP with Python's smtplib: EHLO, STARTTLS
(trusting the certificate in CAFILE), EHLO again, then MAIL, every RCPT and
DATA in one write, as PIPELINING (RFC 2920) allows, each reply read after.
Prints each reply's code after the greeting commands, one a line.
Usage: smtp_pipeline.py HOST PORT CAFILE FROM RCPT..."""
import re
import smtplib
import ssl
import sys

host, port, cafile, sender, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
msg = sys.stdin.buffer.read()
with smtplib.SMTP(host, port, local_hostname="client.example.net") as s:
    s.ehlo()
    if not s.has_extn("starttls"):
        sys.exit("no STARTTLS")
    s.starttls(context=ssl.create_default_context(cafile=cafile))
    s.ehlo()
    if not s.has_extn("pipelining"):
        sys.exit("no PIPELINING")
    batch = "MAIL FROM:<%s> SIZE=%d\r\n" % (sender, len(msg))
    batch += "".join("RCPT TO:<%s>\r\n" % r for r in rcpts)
    batch += "DATA\r\n"
    s.send(batch.encode())
    codes = [s.getreply()[0] for _ in range(len(rcpts) + 2)]
    if codes[-1] == 354:
        data = re.sub(rb"(?m)^\.", b"..", msg)  # RFC 5321 4.5.2
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        s.send(data + b".\r\n")
        codes.append(s.getreply()[0])
    print("\n".join(str(c) for c in codes))
