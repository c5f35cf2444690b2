"""Send a message as a mail client does, with Python's smtplib over
submission: STARTTLS (mode starttls) or implicit TLS (mode tls), the
certificate verified against CAFILE, LOGIN with the account's password,
then send_message, which takes the envelope sender from From unless
ENVELOPE gives it: a client that sends as its account in MAIL FROM and
as someone else in the header. Prints "sent", or "refused CODE TEXT"
for a sender refused at MAIL FROM or a message refused after DATA.
Usage: submission_send.py starttls|tls HOST PORT CAFILE USER PASSWORD FROM TO SUBJECT [ENVELOPE]"""
import smtplib
import ssl
import sys
from email.message import EmailMessage

mode, host, port, cafile, user, password, sender, to, subject = sys.argv[1:10]
envelope = sys.argv[10] if len(sys.argv) > 10 else None
ctx = ssl.create_default_context(cafile=cafile)
msg = EmailMessage()
msg["From"] = sender
msg["To"] = to
msg["Subject"] = subject
msg.set_content("Sent over submission.\n")
if mode == "tls":
    s = smtplib.SMTP_SSL(host, int(port), context=ctx)
else:
    s = smtplib.SMTP(host, int(port))
    s.starttls(context=ctx)
s.login(user, password)
try:
    s.send_message(msg, from_addr=envelope)
    print("sent")
except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
    print("refused", e.smtp_code, e.smtp_error.decode())
s.quit()
