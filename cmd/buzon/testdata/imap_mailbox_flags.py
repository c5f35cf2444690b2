"""Log in over IMAP with STARTTLS, as a mail client does, and print every
mailbox that holds messages, then each message's Subject and FLAGS, in
UID order: "MAILBOX: SUBJECT [FLAG ...]", flags sorted, \\Recent left out.
Usage: imap_mailbox_flags.py HOST PORT USER PASSWORD"""
import email
import imaplib
import re
import ssl
import sys

host, port, user, password = sys.argv[1:5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
imap = imaplib.IMAP4(host, int(port))
imap.starttls(ctx)
imap.login(user, password)
typ, listing = imap.list()
assert typ == "OK", listing
names = []
for line in listing:
    m = re.match(rb'\((.*?)\) (?:"."|NIL) (.*)$', line)
    assert m, line
    name = m.group(2).decode()
    if name.startswith('"'):
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if b"\\Noselect" not in m.group(1):
        names.append(name)
for name in sorted(names):
    typ, data = imap.select('"%s"' % name, readonly=True)
    assert typ == "OK", data
    if data[0] == b"0":
        continue
    typ, data = imap.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK", data
    for item in data:
        if not isinstance(item, tuple):
            continue
        flags = re.search(rb"FLAGS \((.*?)\)", item[0]).group(1).decode().split()
        flags = sorted(f for f in flags if f != "\\Recent")
        subject = email.message_from_bytes(item[1])["Subject"]
        print("%s: %s [%s]" % (name, subject, " ".join(flags)))
imap.logout()
