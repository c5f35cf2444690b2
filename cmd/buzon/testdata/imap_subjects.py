"""Log in over IMAP with STARTTLS and print the Subject of each message in
INBOX, in UID order. Usage: imap_subjects.py HOST PORT USER PASSWORD"""
import email
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
typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
assert typ == "OK", data
for item in data:
    if isinstance(item, tuple):
        print(email.message_from_bytes(item[1])["Subject"])
imap.logout()
