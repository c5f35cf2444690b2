#!/usr/bin/env python3
"""Thread a mailbox with Python's imaplib, an independent client:
thread() and uid('THREAD', ...), as scripts and webmail written in
Python do.

Usage: imaplib_thread.py HOST PORT USER PASSWORD
Exits non-zero with a message when the server does not behave.
"""
import imaplib

from imapcheck import check, login, ok

M = login()
# imaplib keeps the capabilities of before login: ask again.
caps = ok(M.capability(), "capability")[0].split()
check(b"THREAD=REFERENCES" in caps and b"THREAD=ORDEREDSUBJECT" in caps, "THREAD capabilities: %r" % caps)

# A conversation, a reply by subject alone, and an unrelated message,
# appended in an order that is not the order they were written.
msgs = [
    b"Date: Mon, 4 Mar 2024 12:00:00 +0000\r\nMessage-ID: <c@py.example>\r\n"
    b"References: <a@py.example> <b@py.example>\r\nSubject: Re: Picnic\r\n\r\nthird\r\n",
    b"Date: Mon, 4 Mar 2024 10:00:00 +0000\r\nMessage-ID: <a@py.example>\r\nSubject: Picnic\r\n\r\nfirst\r\n",
    b"Date: Mon, 4 Mar 2024 11:00:00 +0000\r\nMessage-ID: <b@py.example>\r\n"
    b"In-Reply-To: <a@py.example>\r\nSubject: Re: Picnic\r\n\r\nsecond\r\n",
    b"Date: Mon, 4 Mar 2024 09:00:00 +0000\r\nMessage-ID: <x@py.example>\r\nSubject: Invoice\r\n\r\nother\r\n",
    b"Date: Mon, 4 Mar 2024 13:00:00 +0000\r\nMessage-ID: <d@py.example>\r\nSubject: RE: picnic\r\n\r\nby subject\r\n",
]
for i, m in enumerate(msgs):
    ok(M.append("INBOX", None, None, m), "append %d" % (i + 1))
ok(M.select("INBOX"), "select")
ok(M.store("4", "+FLAGS", r"(\Seen)"), "mark the invoice seen")

data = ok(M.thread("REFERENCES", "UTF-8", "ALL"), "thread REFERENCES")
check(data == [b"(4)(2 (3 1)(5))"], "REFERENCES threads: %r" % data)
data = ok(M.thread("ORDEREDSUBJECT", "US-ASCII", "ALL"), "thread ORDEREDSUBJECT")
check(data == [b"(4)(2 (3)(1)(5))"], "ORDEREDSUBJECT threads: %r" % data)
data = ok(M.thread("REFERENCES", "UTF-8", "UNSEEN"), "thread UNSEEN")
check(data == [b"(2 (3 1)(5))"], "unseen threads: %r" % data)
data = ok(M.uid("THREAD", "REFERENCES", "UTF-8", "SUBJECT", "invoice"), "uid THREAD")
check(data == [b"(4)"], "UID THREAD of the invoice, UID 4: %r" % data)
data = ok(M.thread("REFERENCES", "UTF-8", "DELETED"), "thread of nothing")
check(data == [None] or data == [b""], "no threads: %r" % data)
try:
    M.thread("REFS", "UTF-8", "ALL")
    check(False, "REFS refused")
except imaplib.IMAP4.error as e:
    check("BAD" in str(e) or "unknown" in str(e), "REFS refused: %s" % e)
ok(M.noop(), "session goes on")
M.logout()
print("PASS")
