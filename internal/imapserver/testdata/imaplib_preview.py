#!/usr/bin/env python3
"""PREVIEW (RFC 8970) and ESORT (RFC 5267) with Python's imaplib, an
independent client: previews of plain, HTML and non-ASCII messages in one
FETCH, not setting \\Seen; SORT RETURN answered with ESEARCH in the sorted
order, through _simple_command as imaplib knows neither.

Usage: imaplib_preview.py HOST PORT USER PASSWORD
Exits non-zero with a message when the server does not behave.
"""
import re
import time

import imaplib

from imapcheck import check, login, ok

M = login()
caps = ok(M.capability(), "capability")[0].split()
check(b"PREVIEW" in caps and b"ESORT" in caps, "PREVIEW and ESORT capabilities: %r" % caps)

messages = [
    # (date, raw): appended oldest last, so that DATE and ARRIVAL differ.
    ('"04-Mar-2024 10:00:00 +0000"', b"Date: Mon, 4 Mar 2024 10:00:00 +0000\r\nSubject: b plain\r\n\r\n"
     b"> quoted line\r\nHello   there,\r\n\r\nsee you\tsoon.\r\n"),
    ('"03-Mar-2024 10:00:00 +0000"', b"Date: Sun, 3 Mar 2024 10:00:00 +0000\r\nSubject: c html\r\n"
     b"Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><style>p{}</style></head>"
     b"<body><p>Caf\xc3\xa9 &amp; <b>cr\xc3\xa8me</b></p></body></html>\r\n"),
    ('"02-Mar-2024 10:00:00 +0000"', b"Date: Sat, 2 Mar 2024 10:00:00 +0000\r\nSubject: a image\r\n"
     b"Content-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlhAQABAAAAACw=\r\n"),
]
for date, raw in messages:
    ok(M.append("INBOX", None, date, raw), "append %r" % raw[:40])
ok(M.select("INBOX"), "select")

data = ok(M.fetch("1:3", "(UID PREVIEW)"), "fetch PREVIEW")
# imaplib gives a literal as a (head, literal) tuple, a quoted string
# inside the line.
previews = {}
for item in data:
    if isinstance(item, tuple):
        num = int(item[0].split()[0])
        previews[num] = item[1].decode("utf-8")
    elif item != b")":
        m = re.match(rb'(\d+) \(UID \d+ PREVIEW "((?:[^"\\]|\\.)*)"\)', item)
        check(m is not None, "a PREVIEW in %r" % item)
        previews[int(m.group(1))] = m.group(2).decode("utf-8")
check(previews.get(1) == "Hello there, see you soon.", "plain text preview: %r" % previews)
check(previews.get(2) == "Café & crème", "HTML preview, UTF-8 in a literal: %r" % previews)
check(previews.get(3) == "", "no text, an empty preview: %r" % previews)

data = ok(M.fetch("1", "(FLAGS)"), "fetch FLAGS")
check(b"\\Seen" not in data[0], "PREVIEW does not set \\Seen: %r" % data)
data = ok(M.fetch("1", "(PREVIEW (LAZY))"), "fetch PREVIEW (LAZY)")
check(b'PREVIEW "Hello there, see you soon."' in data[0], "LAZY answers the preview: %r" % data)


def esearch(*args):
    """Runs a command and returns its ESEARCH response without the tag."""
    typ, data = M._simple_command(*args)
    check(typ == "OK", "%s: %s %r" % (args, typ, data))
    typ, data = M._untagged_response(typ, data, "ESEARCH")
    check(len(data) == 1 and data[0] is not None, "one ESEARCH response to %s: %r" % (args, data))
    return re.sub(rb'^\(TAG "[^"]*"\) ?', b"", data[0])


got = esearch("SORT", "RETURN (MIN MAX COUNT ALL)", "(DATE)", "UTF-8", "ALL")
check(got == b"MIN 3 MAX 1 COUNT 3 ALL 3,2,1", "SORT RETURN by DATE: %r" % got)
got = esearch("SORT", "RETURN ()", "(REVERSE DATE)", "UTF-8", "ALL")
check(got == b"ALL 1:3", "SORT RETURN () is ALL, a run of numbers a range: %r" % got)
typ, data = M.uid("SORT", "RETURN (ALL)", "(SUBJECT)", "UTF-8", "ALL")
check(typ == "OK", "uid SORT RETURN: %s %r" % (typ, data))
esearch_data = M.untagged_responses.pop("ESEARCH", [None])
check(esearch_data[0] is not None and esearch_data[0].endswith(b"UID ALL 3,1:2"), "UID SORT RETURN by SUBJECT: %r" % esearch_data)
got = esearch("SORT", "RETURN (COUNT)", "(DATE)", "UTF-8", "SUBJECT", "nothing-like-this")
check(got == b"COUNT 0", "nothing found: %r" % got)

# A plain SORT stays a SORT response.
typ, data = M.sort("(REVERSE DATE)", "UTF-8", "ALL")
check(typ == "OK" and data == [b"1 2 3"], "plain SORT: %r" % data)
ok(M.noop(), "session goes on")
M.logout()
print("PASS")
