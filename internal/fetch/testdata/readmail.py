"""List the messages of a Maildir or mbox the way a mail client reads them,
with Python's mailbox module.

Usage: readmail.py maildir|mbox PATH

Prints the number of messages, then their subjects sorted, one a line.
Exits non-zero if a message lacks a Message-ID or its body."""
import mailbox
import sys

kind, path = sys.argv[1:3]
if kind == "maildir":
    box = mailbox.Maildir(path, factory=None, create=False)
else:
    box = mailbox.mbox(path, create=False)
subjects = []
for key, msg in box.items():
    if msg["Message-ID"] is None:
        sys.exit(f"{key}: no Message-ID")
    body = msg.get_payload()
    if not body.startswith("Hello "):
        sys.exit(f"{key}: body {body[:40]!r}")
    subjects.append(msg["Subject"])
print(len(subjects))
for s in sorted(subjects):
    print(s)
