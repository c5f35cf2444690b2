"""Send a message as a mail client does, with Python's smtplib over
submission: STARTTLS (mode starttls) or implicit TLS (mode tls), the
certificate verified against CAFILE, LOGIN with the account's password,
then send_message, which takes the envelope sender from From. Prints
"sent", or "refused CODE TEXT" for a refused sender.
Usage: submission_send.py starttls|tls HOST PORT CAFILE USER PASSWORD FROM TO SUBJECT"""
import smtplib
import ssl
import sys
from email.message import EmailMessage

mode, host, port, cafile, user, password, sender, to, subject = sys.argv[1:]
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
    s.send_message(msg)
    print("sent")
except smtplib.SMTPSenderRefused as e:
    print("refused", e.smtp_code, e.smtp_error.decode())
s.quit()
