"""Log in over IMAP with STARTTLS and print the mailbox list.
Usage: imap_login.py HOST PORT USER PASSWORD"""
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
typ, boxes = imap.list()
assert typ == "OK", boxes
for b in boxes:
    print(b.decode())
imap.logout()
