"""Log in over IMAP with STARTTLS and print each mailbox's name, then the
Subject of each message in it, in UID order, indented.
Usage: imap_folder_subjects.py HOST PORT USER PASSWORD MAILBOX..."""
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
for mailbox in sys.argv[5:]:
    print(mailbox)
    typ, data = imap.select('"%s"' % mailbox, readonly=True)
    if typ != "OK":
        print("  (no such mailbox)")
        continue
    typ, data = imap.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    for item in data:
        if isinstance(item, tuple):
            print("  " + email.message_from_bytes(item[1])["Subject"])
imap.logout()
