# Submits a message with Python's smtplib, as scripts and many programs
# do, and prints what happened: "sent", "refused CODE TEXT" for a sender
# refused at MAIL FROM or a message refused after DATA, or "no auth" when
# the server offers no login. The envelope sender is ENVELOPE, or, as
# send_message takes it, the From field.
#
# usage: submit.py starttls|tls|plain HOST PORT CAFILE USER PASSWORD FROM TO [ENVELOPE]
import smtplib
import ssl
import sys
from email.message import EmailMessage

mode, host, port, cafile, user, password, sender, to = sys.argv[1:9]
envelope = sys.argv[9] if len(sys.argv) > 9 else None
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
    s.send_message(msg, from_addr=envelope)
    print("sent")
except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as e:
    print("refused", e.smtp_code, e.smtp_error)
s.quit()
