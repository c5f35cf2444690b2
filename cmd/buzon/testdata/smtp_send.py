"""Send standard input over SMTP with Python's smtplib, as another mail
server would: EHLO, STARTTLS (not checking the certificate), one
transaction. Prints each refused recipient and its code, then the reply to
the data. A recipient without "@" is sent as is: "postmaster" is
RCPT TO:<postmaster>. Usage: smtp_send.py HOST PORT FROM RCPT..."""
import smtplib
import ssl
import sys

host, port, sender, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
msg = sys.stdin.buffer.read()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP(host, port, local_hostname="relay.example.net") as smtp:
    smtp.starttls(context=ctx)
    smtp.ehlo("relay.example.net")
    smtp.mail(sender)
    accepted = 0
    for rcpt in rcpts:
        code, _ = smtp.rcpt(rcpt)
        if code == 250:
            accepted += 1
        else:
            print("refused", rcpt, code)
    if accepted:
        code, reply = smtp.data(msg)
        print(code, reply.decode().split(",")[0])
