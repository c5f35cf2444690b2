"""Log in over IMAP with STARTTLS and print each message in INBOX whole,
in UID order, each followed by a line "--end--".
Usage: imap_messages.py HOST PORT USER PASSWORD"""
import imaplib
import ssl
import sys

host, port, user, password = sys.argv[1:5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
imap = imaplib.IMAP4(host, int(port))
imap.starttls(ctx)
imap.login(user, password)
typ, _ = imap.select("INBOX", readonly=True)
assert typ == "OK"
typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[])")
assert typ == "OK", data
for item in data:
    if isinstance(item, tuple):
        sys.stdout.write(item[1].decode("utf-8", "replace"))
        print("--end--")
imap.logout()
