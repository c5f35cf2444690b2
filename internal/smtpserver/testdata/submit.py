# Submits a message with Python's smtplib, as scripts and many programs
# do, and prints what happened: "sent", "refused CODE TEXT" for a refused
# sender, or "no auth" when the server offers no login.
#
# usage: submit.py starttls|tls|plain HOST PORT CAFILE USER PASSWORD FROM TO
import smtplib
import ssl
import sys
from email.message import EmailMessage

mode, host, port, cafile, user, password, sender, to = sys.argv[1:]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False  # the test certificate names mx.example.org

msg = EmailMessage()
msg["From"] = sender
msg["To"] = to
msg["Subject"] = "from smtplib"
msg.set_content("Hello from Python.\n.a line with a dot\n")

if mode == "tls":
    s = smtplib.SMTP_SSL(host, int(port), context=ctx)
else:
    s = smtplib.SMTP(host, int(port))
    if mode == "starttls":
        s.starttls(context=ctx)
s.ehlo()
if not s.has_extn("auth"):
    print("no auth")
    s.quit()
    sys.exit(0)
s.login(user, password)
try:
    s.send_message(msg)
    print("sent")
except smtplib.SMTPSenderRefused as e:
    print("refused", e.smtp_code, e.smtp_error)
s.quit()
